// Loads a GGUF model, generates a few tokens and prints, for every layer, which earlier
// token each head of the last prompt token attends to most.
//   build/examples/observe_attention model.gguf "The cat sat on the"
#include <cstdio>
#include <string>
#include <vector>

#include <attnscope/generate.h>
#include <fmt/format.h>

namespace {

struct StrongestKey : attnscope::Observer {
  int32_t query = 0;  // the row to report
  std::vector<std::string> lines;
  void on_attention(const attnscope::AttentionRows& r) override {  // (n_heads, n_rows, n_keys)
    if (query < r.q_begin || query >= r.q_begin + r.n_rows) return;
    std::string line = fmt::format("layer {}:", r.layer);
    for (int32_t h = 0; h < r.n_heads; ++h) {
      int32_t best = 0;
      for (int32_t k = 1; k < r.n_keys; ++k) {
        if (r.at(h, query - r.q_begin, k) > r.at(h, query - r.q_begin, best)) best = k;
      }
      line += fmt::format(" {}", best);
    }
    lines.push_back(line);
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL.gguf PROMPT\n", argv[0]);
    return 2;
  }
  auto model = attnscope::Model::load(argv[1]);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.error().message.c_str());
    return 1;
  }
  auto session = attnscope::Session::create(*model);
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.error().message.c_str());
    return 1;
  }
  const auto& tokenizer = (*model)->tokenizer();
  const auto ids = tokenizer.encode(argv[2], /*add_special=*/true, /*parse_special=*/true);
  StrongestKey observer;
  observer.query = static_cast<int32_t>(ids.size()) - 1;
  auto result = attnscope::generate(**session, ids, {.max_new_tokens = 8}, &observer);
  if (!result.ok()) {
    std::fprintf(stderr, "%s\n", result.error().message.c_str());
    return 1;
  }
  std::printf("continuation: %s\n", tokenizer.decode(result->generated).c_str());
  std::printf("strongest key position per head for query %d:\n", observer.query);
  for (const auto& line : observer.lines) std::printf("  %s\n", line.c_str());
  return 0;
}
