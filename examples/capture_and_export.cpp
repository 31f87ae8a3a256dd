// The whole workflow through the C++ API: load a model, capture a prompt into a run
// directory, read a slice and an aggregate back, and export the run for Python.
//   build/examples/capture_and_export model.gguf "The cat sat on the mat." /tmp/run /tmp/run.safetensors
#include <cstdio>

#include <attnscope/capture.h>
#include <attnscope/export.h>

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s MODEL.gguf PROMPT RUN_DIR OUT.safetensors\n", argv[0]);
    return 2;
  }
  auto die = [](const attnscope::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.message.c_str());
    return 1;
  };

  // 1. Load the model and describe it for the run's manifest.
  auto model = attnscope::Model::load(argv[1]);
  if (!model.ok()) return die(model.error());
  auto identity = attnscope::identify_model(**model);
  if (!identity.ok()) return die(identity.error());

  // 2. Capture: greedy generation; every attention row of every layer and head is stored.
  attnscope::CaptureRequest request;
  request.prompt = argv[2];
  request.max_new_tokens = 8;
  request.run_dir = argv[3];
  request.overwrite = true;
  auto captured = attnscope::capture(*model, *identity, request);
  if (!captured.ok()) return die(captured.error());
  std::printf("captured %zu tokens into %s\n", captured->manifest.tokens.size(), argv[3]);

  // 3. Read back: the last token's attention over the whole sequence, head 0 of layer 0,
  //    and the rollout through every layer.
  auto run = attnscope::store::RunReader::open(argv[3]);
  if (!run.ok()) return die(run.error());
  const int32_t n = (*run)->n_rows();
  const attnscope::store::Range last{n - 1, n}, all{0, n};
  auto row = (*run)->read(0, 0, last, all);
  auto rollout = (*run)->aggregate(attnscope::store::Aggregate::kRollout, (*run)->n_layers() - 1, 0, last, all);
  if (!row.ok()) return die(row.error());
  if (!rollout.ok()) return die(rollout.error());
  const auto& tokens = (*run)->manifest().tokens;
  std::printf("%-16s %10s %10s\n", "key token", "L0 head 0", "rollout");
  for (int32_t k = 0; k < n; ++k) {
    std::printf("%-16.16s %10.4f %10.4f\n", tokens[static_cast<size_t>(k)].text.c_str(),
                (*row)[static_cast<size_t>(k)], (*rollout)[static_cast<size_t>(k)]);
  }

  // 4. Export every layer's heads plus the rollouts for numpy / PyTorch.
  attnscope::store::ExportOptions options;
  options.aggregates = {attnscope::store::Aggregate::kNone, attnscope::store::Aggregate::kRollout};
  auto exported = attnscope::store::export_safetensors(**run, options, argv[4]);
  if (!exported.ok()) return die(exported.error());
  std::printf("wrote %s\n", argv[4]);
  return 0;
}
