// `attnscope serve`: an HTTP server for the browser viewer (web/, embedded in the
// binary). API and data semantics: docs/viewer-api.md; security model: docs/viewer.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/model.h"
#include "attnscope/result.h"
#include "attnscope/store.h"

namespace attnscope::server {

constexpr size_t kMaxRequestBody = 64 * 1024;  // larger bodies get 413

struct ServeOptions {
  // Run directories and directories of runs (their immediate subdirectories that are runs).
  std::vector<std::string> run_paths;
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (see Server::port())
  // With a model, POST /api/capture captures into `capture_dir` (default: the first
  // directory of runs given, else "runs" next to the first path, else ./runs).
  std::shared_ptr<const Model> model;
  store::ModelIdentity model_identity;  // identify_model(*model)
  std::string capture_dir;
};

class Server {
 public:
  // Checks the paths and builds the run list; does not bind yet.
  static Result<std::unique_ptr<Server>> create(ServeOptions options);
  ~Server();  // stops, cancelling a running capture

  // Binds and starts answering on a background thread. Errors: the address is in use, ...
  Status start();
  int port() const;         // the bound port (after start)
  std::string url() const;  // "http://127.0.0.1:PORT/"
  // Stops answering and waits for the background thread. Idempotent.
  void stop();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace attnscope::server
