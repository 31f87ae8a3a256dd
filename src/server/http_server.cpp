// The HTTP side of `attnscope serve` (routes: docs/viewer-api.md). Every request is
// routed here by hand: a path is compared with fixed prefixes and split into an API
// verb and a run id; static files come only from the embedded table.
#include <arpa/inet.h>
#include "attnscope/server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "attnscope/version.h"
#include "server/capture_jobs.h"
#include "server/page.h"
#include "server/run_registry.h"
#include "server/slice.h"
#include "server/web_assets.h"

namespace attnscope::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// script-src: the page's own inline scripts (import map, config, the entry module)
// carry a per-response nonce; modules come from /static/. No inline event handlers.
std::string content_security_policy(const std::string& nonce) {
  return fmt::format(
      "default-src 'self'; script-src 'self' 'nonce-{}'; style-src 'self' 'unsafe-inline'; "
      "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
      "form-action 'self'; frame-ancestors 'none'",
      nonce);
}

std::string random_nonce() {
  std::random_device rd;
  uint8_t bytes[16];
  for (auto& b : bytes) b = static_cast<uint8_t>(rd());
  return base64_encode(std::span<const uint8_t>(bytes, sizeof bytes));
}

void send_json(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, json{{"error", message}}, status);
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// A literal loopback address or "localhost": never a DNS name that merely starts with
// "127." (127.evil.example could be rebound to this machine).
bool is_loopback_host(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  in_addr addr{};
  return inet_pton(AF_INET, host.c_str(), &addr) == 1 && (ntohl(addr.s_addr) >> 24) == 127;
}

// The host name of a Host header: "127.0.0.1:8080" -> "127.0.0.1", "[::1]:80" -> "[::1]".
std::string host_name(const std::string& header) {
  if (starts_with(header, "[")) {
    const size_t close = header.find(']');
    return close == std::string::npos ? header : header.substr(0, close + 1);
  }
  return header.substr(0, header.find(':'));
}

Params params_of(const httplib::Request& req) { return Params(req.params.begin(), req.params.end()); }

}  // namespace

struct Server::Impl {
  ServeOptions options;
  std::unique_ptr<RunRegistry> registry;
  std::unique_ptr<CaptureJobs> jobs;
  GridCache grids;
  httplib::Server http;
  std::thread thread;
  int port = -1;
  bool started = false;
  std::atomic<bool> listen_returned{false};

  void install_routes();
  bool host_allowed(const httplib::Request& req) const;
  void get(const httplib::Request& req, httplib::Response& res);
  void post(const httplib::Request& req, const std::string& body, httplib::Response& res);
  void page(const httplib::Request& req, httplib::Response& res);
  void static_file(const std::string& name, httplib::Response& res);
  void run_api(const std::string& id, const std::string& verb, const httplib::Request& req,
               httplib::Response& res);
  void start_capture(const httplib::Request& req, const std::string& body, httplib::Response& res);
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { stop(); }

Result<std::unique_ptr<Server>> Server::create(ServeOptions options) {
  auto impl = std::make_unique<Impl>();
  ATTN_ASSIGN_OR_RETURN(impl->registry, RunRegistry::create(options.run_paths));
  if (options.model) {
    fs::path dir = options.capture_dir;
    if (dir.empty()) {
      if (auto first = impl->registry->first_runs_dir()) {
        dir = *first;
      } else if (!impl->registry->paths().empty()) {
        dir = impl->registry->paths().front().parent_path() / "runs";
      } else {
        dir = "runs";
      }
    }
    std::error_code ec;
    if (fs::is_directory(dir, ec)) impl->registry->add_runs_dir(dir);
    impl->jobs = std::make_unique<CaptureJobs>(options.model, options.model_identity, dir, impl->registry.get());
  }
  impl->options = std::move(options);
  impl->install_routes();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::start() {
  Impl& s = *impl_;
  if (s.started) return make_error("the server is already running");
  const std::string& host = s.options.host;
  if (s.options.port == 0) {
    s.port = s.http.bind_to_any_port(host);
    if (s.port < 0) return make_error("cannot listen on {} (any port)", host);
  } else {
    if (!s.http.bind_to_port(host, s.options.port)) {
      return make_error("cannot listen on {}:{} (in use? try --port 0 for any free port)", host, s.options.port);
    }
    s.port = s.options.port;
  }
  s.started = true;
  s.listen_returned = false;
  s.thread = std::thread([&s] {
    s.http.listen_after_bind();
    s.listen_returned = true;
  });
  // httplib's stop() does nothing until the listening loop has started: wait for it,
  // so that a stop() right after start() cannot leave the thread blocked in accept().
  while (!s.http.is_running() && !s.listen_returned) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!s.http.is_running()) {
    s.thread.join();
    s.started = false;
    return make_error("cannot listen on {}:{}", host, s.port);
  }
  return ok_status();
}

int Server::port() const { return impl_->port; }

std::string Server::url() const {
  std::string host = impl_->options.host;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return fmt::format("http://{}:{}/", host, impl_->port);
}

void Server::stop() {
  if (!impl_) return;
  Impl& s = *impl_;
  if (s.started) {
    s.http.stop();
    if (s.thread.joinable()) s.thread.join();
    s.started = false;
  }
  s.jobs.reset();  // cancels a running capture; its run stays, marked incomplete
}

void Server::Impl::install_routes() {
  http.set_payload_max_length(kMaxRequestBody);
  // An idle keep-alive connection holds a worker until this timeout, and stop() waits
  // for the workers: 1 s keeps Ctrl-C prompt while a browser tab is open.
  http.set_keep_alive_timeout(1);
  http.set_keep_alive_max_count(100);
  http.set_default_headers({{"Cache-Control", "no-store"},
                            {"X-Content-Type-Options", "nosniff"},
                            {"Referrer-Policy", "no-referrer"}});
  // Errors produced by httplib itself (413, a malformed request, an unknown method)
  // get the same JSON body as ours.
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const char* what = res.status == 413   ? "request body too large (at most 65536 bytes)"
                       : res.status == 404 ? "not found"
                       : res.status == 400 ? "bad request"
                                           : "request failed";
    send_error(res, res.status, what);
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = fmt::format("internal error: {}", e.what());
    } catch (...) {
    }
    send_error(res, 500, what);
  });
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second
  // server bind the same port and silently share its connections.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // One handler per method; the path is matched in get()/post().
  http.Get(R"([\s\S]*)", [this](const httplib::Request& req, httplib::Response& res) { get(req, res); });
  // POST bodies are read here, so that the size limit also holds for a chunked body
  // (httplib checks Content-Length only): past the limit the rest is read and dropped.
  http.Post(R"([\s\S]*)", [this](const httplib::Request& req, httplib::Response& res,
                                  const httplib::ContentReader& content) {
    std::string body;
    bool too_large = false;
    const bool read = content([&](const char* data, size_t n) {
      if (body.size() + n > kMaxRequestBody) too_large = true;
      if (!too_large) body.append(data, n);
      return true;
    });
    if (too_large || res.status == 413) return send_error(res, 413, "request body too large (at most 65536 bytes)");
    if (!read) return send_error(res, 400, "cannot read the request body");
    post(req, body, res);
  });
}

// A server on a loopback address answers only requests addressed to a loopback name:
// a web page cannot reach it through a DNS name rebound to 127.0.0.1.
bool Server::Impl::host_allowed(const httplib::Request& req) const {
  if (!is_loopback_host(options.host)) return true;
  if (!req.has_header("Host")) return true;  // HTTP/1.0 clients; browsers always send it
  const std::string name = host_name(req.get_header_value("Host"));
  return is_loopback_host(name) || name == options.host;
}

void Server::Impl::get(const httplib::Request& req, httplib::Response& res) {
  if (!host_allowed(req)) return send_error(res, 403, "unexpected Host header");
  const std::string& path = req.path;
  if (path == "/") return page(req, res);
  if (starts_with(path, "/static/")) return static_file(path.substr(8), res);
  if (path == "/api/info") {
    json model = nullptr;
    if (jobs) model = jobs->model_name();
    return send_json(res, {{"version", kVersion}, {"capture_enabled", jobs != nullptr}, {"model", model}});
  }
  if (path == "/api/runs") {
    registry->rescan();
    json runs = json::array();
    for (const auto& r : registry->summaries()) {
      runs.push_back({{"id", r.id}, {"name", r.name}, {"model", r.model}, {"prompt", r.prompt},
                      {"n_tokens", r.n_tokens}, {"complete", r.complete}});
    }
    return send_json(res, {{"runs", runs}});
  }
  if (starts_with(path, "/api/runs/")) {
    const std::string rest = path.substr(10);
    const size_t slash = rest.find('/');
    if (slash == std::string::npos || slash == 0) return send_error(res, 404, "not found");
    return run_api(rest.substr(0, slash), rest.substr(slash + 1), req, res);
  }
  if (starts_with(path, "/api/jobs/")) {
    const std::string id = path.substr(10);
    std::optional<JobStatus> status;
    if (jobs) status = jobs->status(id);
    if (!status) return send_error(res, 404, "unknown job");
    return send_json(res, {{"phase", status->phase},
                           {"done", status->done},
                           {"total", status->total},
                           {"run", status->run ? json(*status->run) : json(nullptr)},
                           {"error", status->error ? json(*status->error) : json(nullptr)}});
  }
  send_error(res, 404, "not found");
}

void Server::Impl::post(const httplib::Request& req, const std::string& body, httplib::Response& res) {
  if (!host_allowed(req)) return send_error(res, 403, "unexpected Host header");
  if (req.path == "/api/capture" && jobs) return start_capture(req, body, res);
  send_error(res, 404, "not found");
}

void Server::Impl::page(const httplib::Request& req, httplib::Response& res) {
  const EmbeddedFile* index = find_web_file("index.html");
  if (!index) return send_error(res, 500, "this build has no web/index.html");
  // ?run=<id>[&run=<id>][&compare=1]: open those runs (unknown ids are dropped).
  json runs = json::array();
  registry->rescan();
  const auto known = registry->ids();
  for (size_t i = 0; i < req.get_param_value_count("run"); ++i) {
    const std::string id = req.get_param_value("run", i);
    if (std::find(known.begin(), known.end(), id) != known.end() && runs.size() < 2) runs.push_back(id);
  }
  const bool compare = req.get_param_value("compare") == "1" && runs.size() == 2;
  const json config = {{"mode", "http"}, {"runs", runs}, {"compare", compare}, {"captureEnabled", jobs != nullptr}};
  const std::string nonce = random_nonce();
  std::string head = fmt::format("<script type=\"importmap\" nonce=\"{}\">{}</script>\n", nonce,
                                 script_json(json{{"imports", {{"attnscope/", "/static/"}}}}));
  for (const auto& f : web_files()) {
    if (f.path.ends_with(".css")) head += fmt::format("<link rel=\"stylesheet\" href=\"/static/{}\">\n", f.path);
  }
  head += fmt::format("<script nonce=\"{}\">window.ATTNSCOPE_CONFIG = {};</script>\n", nonce, script_json(config));
  const std::string html = assemble_page(add_script_nonce(as_text(*index), nonce), head, "");
  res.set_header("Content-Security-Policy", content_security_policy(nonce));
  res.set_content(html, "text/html; charset=utf-8");
}

void Server::Impl::static_file(const std::string& name, httplib::Response& res) {
  // An exact entry of the embedded table or nothing: no file system access.
  const EmbeddedFile* f = find_web_file(name);
  if (!f) return send_error(res, 404, "not found");
  res.set_content(reinterpret_cast<const char*>(f->data.data()), f->data.size(), content_type_for(f->path));
}

void Server::Impl::run_api(const std::string& id, const std::string& verb, const httplib::Request& req,
                           httplib::Response& res) {
  if (verb != "manifest" && verb != "matrix" && verb != "grid") return send_error(res, 404, "not found");
  if (!registry->dir_of(id)) {
    registry->rescan();  // a run created since the last listing
    if (!registry->dir_of(id)) return send_error(res, 404, fmt::format("unknown run '{}'", id));
  }
  auto run = registry->open(id);
  if (!run.ok()) return send_error(res, 500, run.error().message);
  const store::RunReader& reader = *run->reader;
  if (verb == "manifest") {
    json m = json::parse(store::manifest_to_json(reader.manifest()), nullptr, false);
    if (m.is_discarded()) return send_error(res, 500, "cannot encode the manifest");
    m["n_rows"] = reader.n_rows();
    return send_json(res, m);
  }
  if (verb == "matrix") {
    auto query = parse_matrix_query(params_of(req), shape_of(reader));
    if (!query.ok()) return send_error(res, 400, query.error().message);
    auto m = matrix(reader, *query);
    if (!m.ok()) return send_error(res, 500, m.error().message);
    res.set_header("X-Rows", std::to_string(m->rows));
    res.set_header("X-Cols", std::to_string(m->cols));
    // float32 little-endian (the store refuses big-endian hosts at compile time)
    res.set_content(reinterpret_cast<const char*>(m->data.data()), m->data.size() * sizeof(float),
                    "application/octet-stream");
    return;
  }
  auto size = parse_grid_size(params_of(req));
  if (!size.ok()) return send_error(res, 400, size.error().message);
  auto g = grids.get(*run, *size);
  if (!g.ok()) return send_error(res, 500, g.error().message);
  res.set_header("X-Layers", std::to_string((*g)->n_layers));
  res.set_header("X-Heads", std::to_string((*g)->n_heads));
  res.set_header("X-Size", std::to_string((*g)->size));
  res.set_content(reinterpret_cast<const char*>((*g)->data.data()), (*g)->data.size(), "application/octet-stream");
}

void Server::Impl::start_capture(const httplib::Request& req, const std::string& text, httplib::Response& res) {
  // Cross-site requests: a JSON content type needs a CORS preflight, which this server
  // never grants; a browser's Origin must be this server.
  if (!starts_with(req.get_header_value("Content-Type"), "application/json")) {
    return send_error(res, 400, "invalid Content-Type: expected application/json");
  }
  if (req.has_header("Origin") && req.get_header_value("Origin") != "http://" + req.get_header_value("Host")) {
    return send_error(res, 403, "cross-origin request refused");
  }
  const json body = json::parse(text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return send_error(res, 400, "invalid body: expected a JSON object");
  for (const auto& [key, value] : body.items()) {
    if (key != "prompt" && key != "max_new_tokens") {
      return send_error(res, 400, fmt::format("unknown field '{}' (expected prompt, max_new_tokens)", key));
    }
  }
  if (!body.contains("prompt") || !body["prompt"].is_string() || body["prompt"].get<std::string>().empty()) {
    return send_error(res, 400, "invalid prompt: expected a non-empty string");
  }
  int32_t max_new = kDefaultCaptureTokens;
  if (body.contains("max_new_tokens")) {
    const json& n = body["max_new_tokens"];
    if (!n.is_number_integer() || n.get<int64_t>() < 0 || n.get<int64_t>() > kMaxCaptureTokens) {
      return send_error(res, 400, fmt::format("invalid max_new_tokens: expected an integer 0..{}", kMaxCaptureTokens));
    }
    max_new = n.get<int32_t>();
  }
  auto job = jobs->start(body["prompt"].get<std::string>(), max_new);
  if (job.error == CaptureJobs::StartError::kBusy) return send_error(res, 409, job.message);
  if (job.error) return send_error(res, 500, job.message);
  send_json(res, {{"job", job.job}});
}

}  // namespace attnscope::server
