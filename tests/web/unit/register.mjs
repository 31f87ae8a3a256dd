// Lets node import the viewer's modules by their bare specifiers (docs/viewer-api.md):
// `attnscope/<path>` resolves to web/<path>, as the page's import map does.
//   node --import ./tests/web/unit/register.mjs --test tests/web/unit/
import { register } from 'node:module';

const hooks = `
const WEB = ${JSON.stringify(new URL('../../../web/', import.meta.url).href)};
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('attnscope/')) {
    return { url: new URL(specifier.slice('attnscope/'.length), WEB).href, shortCircuit: true };
  }
  return next(specifier, context);
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
