// The HTTP server in process on a free port, queried with httplib::Client and raw
// sockets: every route of docs/viewer-api.md, errors (400/403/404/409/413) as JSON,
// the common headers, traversal attempts, the page's injected config and CSP, capture
// jobs, and the default bind address.
#include <gtest/gtest.h>
#include <httplib.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>

#include "attnscope/server.h"
#include "attnscope/version.h"
#include "server/server_test_util.h"
#include "server/slice.h"
#include "server/web_assets.h"

namespace attnscope::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kEvil = "</script><script>alert(1)</script>";

struct RawResponse {
  int status = 0;
  std::string text;  // status line, headers and body
};

// Sends `request` as bytes on a new connection and reads until the server closes (or
// `timeout_s` passes without data: a request it refuses before reading "Connection:
// close" leaves the connection open).
RawResponse raw_request(int port, const std::string& request, int timeout_s = 10) {
  RawResponse r;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return r;
  }
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) r.text.append(buf, static_cast<size_t>(n));
  close(fd);
  if (r.text.rfind("HTTP/1.", 0) == 0 && r.text.size() > 12) r.status = std::atoi(r.text.c_str() + 9);
  return r;
}

RawResponse raw_get(int port, const std::string& target) {
  return raw_request(port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

class HttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new fs::path(testing::fresh_dir("http"));
    testing::capture_run(*root_ / "runs" / "cat", "the cat sat on the mat", 3);
    testing::capture_run(*root_ / "runs" / "evil", kEvil, 2);
    ServeOptions options;
    options.run_paths = {(*root_ / "runs").string()};
    options.port = 0;
    auto s = Server::create(options);
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = s->release();
    auto started = server_->start();
    ASSERT_TRUE(started.ok()) << started.error().message;
  }
  static void TearDownTestSuite() {
    delete server_;
    delete root_;
  }
  static int port() { return server_->port(); }
  static httplib::Client client() {
    httplib::Client c("127.0.0.1", port());
    c.set_read_timeout(30, 0);
    return c;
  }
  static json get_json(const std::string& path, int status = 200) {
    auto c = client();
    auto res = c.Get(path.c_str());
    EXPECT_TRUE(res) << path;
    if (!res) return {};
    EXPECT_EQ(res->status, status) << path << ": " << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << path;
    return json::parse(res->body, nullptr, false);
  }

  static fs::path* root_;
  static Server* server_;
};
fs::path* HttpTest::root_ = nullptr;
Server* HttpTest::server_ = nullptr;

TEST_F(HttpTest, DefaultsToLoopbackAndPrintsItsUrl) {
  EXPECT_EQ(ServeOptions{}.host, "127.0.0.1");
  EXPECT_GT(port(), 0);
  EXPECT_EQ(server_->url(), fmt::format("http://127.0.0.1:{}/", port()));
  // Not reachable through the machine's other addresses.
  ifaddrs* list = nullptr;
  ASSERT_EQ(getifaddrs(&list), 0);
  int tried = 0;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    sockaddr_in addr = *reinterpret_cast<sockaddr_in*>(a->ifa_addr);
    if ((ntohl(addr.sin_addr.s_addr) >> 24) == 127) continue;
    addr.sin_port = htons(static_cast<uint16_t>(port()));
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_NE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << a->ifa_name;
    close(fd);
    ++tried;
  }
  freeifaddrs(list);
  if (tried == 0) std::cerr << "(no non-loopback IPv4 address to try)\n";
}

TEST_F(HttpTest, Info) {
  const json info = get_json("/api/info");
  EXPECT_EQ(info["version"], kVersion);
  EXPECT_EQ(info["capture_enabled"], false);
  EXPECT_TRUE(info["model"].is_null());
}

TEST_F(HttpTest, RunsListsEveryRunAndNewOnes) {
  json runs = get_json("/api/runs")["runs"];
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0]["id"], "cat");
  EXPECT_EQ(runs[0]["name"], "cat");
  EXPECT_EQ(runs[0]["prompt"], "the cat sat on the mat");
  EXPECT_EQ(runs[0]["model"], testing::tiny_model().identity.name);
  EXPECT_EQ(runs[0]["complete"], true);
  EXPECT_GT(runs[0]["n_tokens"].get<int>(), 5);
  EXPECT_EQ(runs[1]["prompt"], kEvil);

  testing::capture_run(*root_ / "runs" / "late", "late run", 1);
  runs = get_json("/api/runs")["runs"];
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[2]["id"], "late");
  fs::remove_all(*root_ / "runs" / "late");
  EXPECT_EQ(get_json("/api/runs")["runs"].size(), 2u);
}

TEST_F(HttpTest, ManifestHasNRows) {
  const json m = get_json("/api/runs/cat/manifest");
  auto reader = store::RunReader::open((*root_ / "runs" / "cat").string());
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(m["n_rows"], (*reader)->n_rows());
  EXPECT_EQ(m["prompt"], "the cat sat on the mat");
  EXPECT_EQ(m["tokens"].size(), (*reader)->manifest().tokens.size());
  EXPECT_EQ(m["attention"]["n_layers"], 3);
}

TEST_F(HttpTest, MatrixIsFloat32WithItsShape) {
  auto reader = store::RunReader::open((*root_ / "runs" / "cat").string());
  ASSERT_TRUE(reader.ok());
  auto c = client();
  for (const char* query : {"layer=1&head=2", "layer=2&agg=rollout&q0=2&q1=9&k0=1&k1=7&stride=2",
                            "agg=layer-mean&stride=3", "agg=head-max&layer=0&q0=4&q1=4"}) {
    SCOPED_TRACE(query);
    auto res = c.Get(fmt::format("/api/runs/cat/matrix?{}", query).c_str());
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/octet-stream");
    Params params;
    httplib::detail::parse_query_text(query, params);
    auto q = parse_matrix_query(Params(params.begin(), params.end()), shape_of(**reader));
    ASSERT_TRUE(q.ok());
    auto expected = matrix(**reader, *q);
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(res->get_header_value("X-Rows"), std::to_string(expected->rows));
    EXPECT_EQ(res->get_header_value("X-Cols"), std::to_string(expected->cols));
    ASSERT_EQ(res->body.size(), expected->data.size() * 4);
    std::vector<float> got(expected->data.size());
    if (!got.empty()) std::memcpy(got.data(), res->body.data(), res->body.size());
    EXPECT_EQ(got, expected->data);
  }
}

TEST_F(HttpTest, GridIsUint8WithItsShape) {
  auto reader = store::RunReader::open((*root_ / "runs" / "cat").string());
  ASSERT_TRUE(reader.ok());
  auto c = client();
  for (int size : {64, 5}) {
    auto res = c.Get(size == 64 ? "/api/runs/cat/grid" : "/api/runs/cat/grid?size=5");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/octet-stream");
    EXPECT_EQ(res->get_header_value("X-Layers"), "3");
    EXPECT_EQ(res->get_header_value("X-Heads"), "10");
    EXPECT_EQ(res->get_header_value("X-Size"), std::to_string(size));
    auto expected = grid(**reader, size);
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(res->body, std::string(expected->data.begin(), expected->data.end()));
  }
}

TEST_F(HttpTest, ErrorsAreJsonWithTheRightStatus) {
  EXPECT_NE(get_json("/api/runs/nope/manifest", 404)["error"].get<std::string>().find("nope"), std::string::npos);
  get_json("/api/runs/nope/matrix", 404);
  get_json("/api/runs/nope/grid", 404);
  get_json("/api/runs/cat/other", 404);
  get_json("/api/runs/cat", 404);
  get_json("/api/runs//manifest", 404);
  get_json("/api/nothing", 404);
  get_json("/nothing", 404);
  get_json("/api/jobs/1", 404);
  const std::pair<const char*, const char*> bad[] = {
      {"/api/runs/cat/matrix?layer=3", "layer"},   {"/api/runs/cat/matrix?head=x", "head"},
      {"/api/runs/cat/matrix?agg=avg", "agg"},      {"/api/runs/cat/matrix?q1=100000", "q1"},
      {"/api/runs/cat/matrix?k0=-1", "k0"},         {"/api/runs/cat/matrix?stride=0", "stride"},
      {"/api/runs/cat/matrix?q0=3&q1=2", "q0"},     {"/api/runs/cat/matrix?evil=1", "evil"},
      {"/api/runs/cat/grid?size=0", "size"},        {"/api/runs/cat/grid?size=300", "size"},
  };
  for (const auto& [path, name] : bad) {
    const json e = get_json(path, 400);
    EXPECT_NE(e["error"].get<std::string>().find(name), std::string::npos) << path << ": " << e;
  }
  // POST /api/capture without --model: no such route.
  auto c = client();
  auto res = c.Post("/api/capture", R"({"prompt":"x"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(HttpTest, EveryResponseCarriesTheCommonHeaders) {
  auto c = client();
  for (const char* path : {"/", "/api/info", "/api/runs", "/api/runs/cat/manifest", "/api/runs/cat/grid?size=2",
                           "/api/runs/nope/manifest", "/api/runs/cat/matrix?layer=9", "/static/index.html",
                           "/static/nope.js"}) {
    auto res = c.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->get_header_value("Cache-Control"), "no-store") << path;
    EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff") << path;
  }
}

TEST_F(HttpTest, StaticServesEveryEmbeddedFileWithItsType) {
  auto c = client();
  ASSERT_FALSE(web_files().empty());
  for (const auto& f : web_files()) {
    auto res = c.Get(("/static/" + std::string(f.path)).c_str());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << f.path;
    EXPECT_EQ(res->get_header_value("Content-Type"), content_type_for(f.path)) << f.path;
    EXPECT_EQ(res->body, as_text(f)) << f.path;
  }
  EXPECT_EQ(std::string(content_type_for("main.js")), "text/javascript; charset=utf-8");
}

TEST_F(HttpTest, TraversalNeverLeavesTheEmbeddedFiles) {
  const char* targets[] = {
      "/static/../../etc/passwd",     "/static/%2e%2e/%2e%2e/etc/passwd", "/static/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
      "/static/..%2f..%2fetc/passwd", "/static//etc/passwd",              "/static/%2fetc%2fpasswd",
      "/static/..\\..\\etc\\passwd",  "/static/%5c..%5c..%5cetc%5cpasswd", "/static/%252e%252e/etc/passwd",
      "/static/views/../index.html",  "/static/./index.html",             "/static/index.html%00.js",
      "/static/index.html/",          "/../../etc/passwd",                "/static/%c0%ae%c0%ae/etc/passwd",
      "/etc/passwd",                  "/static/",                         "/static",
      "/static/README.md",            "//etc/passwd",                     "/static/../CMakeLists.txt",
  };
  for (const char* target : targets) {
    const RawResponse r = raw_get(port(), target);
    EXPECT_TRUE(r.status == 404 || r.status == 400) << target << " -> " << r.status;
    EXPECT_EQ(r.text.find("root:"), std::string::npos) << target;
    EXPECT_EQ(r.text.find("cmake_minimum_required"), std::string::npos) << target;
  }
  // A NUL byte in the request line.
  const RawResponse nul =
      raw_request(port(), std::string("GET /static/index.html\0/../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      "Connection: close\r\n\r\n",
                                      78),
                  1);
  EXPECT_TRUE(nul.status == 404 || nul.status == 400) << nul.status << " " << nul.text;
  EXPECT_EQ(nul.text.find("root:"), std::string::npos);
  // An absolute-form target names a path, not a file.
  const RawResponse abs = raw_get(port(), "http://127.0.0.1/etc/passwd");
  EXPECT_NE(abs.status, 200);
  EXPECT_EQ(abs.text.find("root:"), std::string::npos);
}

TEST_F(HttpTest, LargeBodiesGet413) {
  const std::string body(100 * 1024, 'x');
  const RawResponse r = raw_request(port(), "POST /api/capture HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                            "Content-Type: application/json\r\nConnection: close\r\n"
                                            "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(r.status, 413) << r.text.substr(0, 200);
  EXPECT_NE(r.text.find("\"error\""), std::string::npos) << r.text.substr(0, 400);
  EXPECT_NE(r.text.find("no-store"), std::string::npos);
  auto c = client();
  auto res = c.Post("/api/capture", body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  // Chunked: the limit holds for the decoded body too.
  std::string chunked = "POST /api/capture HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  for (int i = 0; i < 20; ++i) chunked += "1000\r\n" + std::string(4096, 'y') + "\r\n";
  chunked += "0\r\n\r\n";
  const RawResponse rc = raw_request(port(), chunked);
  EXPECT_EQ(rc.status, 413) << rc.text.substr(0, 200);
}

TEST_F(HttpTest, RequestsForAnotherHostAreRefused) {
  const RawResponse r = raw_request(port(), "GET /api/runs HTTP/1.1\r\nHost: attacker.example:80\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.text.find("the cat"), std::string::npos);
  EXPECT_EQ(raw_request(port(), "GET /api/runs HTTP/1.1\r\nHost: localhost:1\r\nConnection: close\r\n\r\n").status, 200);
  // DNS rebinding: a name that only looks like a loopback address is refused.
  for (const char* host : {"127.evil.example", "127.0.0.1.evil.example:8080", "127.1.example"}) {
    EXPECT_EQ(raw_request(port(), fmt::format("GET /api/runs HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", host)).status,
              403) << host;
  }
  EXPECT_EQ(raw_request(port(), "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.2:80\r\nConnection: close\r\n\r\n").status, 200);
}

// The <script> element holding window.ATTNSCOPE_CONFIG, up to its end tag.
std::string config_script(const std::string& page) {
  const size_t at = page.find("window.ATTNSCOPE_CONFIG");
  if (at == std::string::npos) return "";
  const size_t open = page.rfind("<script", at);
  const size_t close = page.find("</script>", at);
  return page.substr(open, close - open);
}

TEST_F(HttpTest, PageHasTheImportMapConfigAndCsp) {
  auto c = client();
  auto res = c.Get("/");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  const std::string csp = res->get_header_value("Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("script-src 'self' 'nonce-"), std::string::npos) << csp;
  const size_t script_src = csp.find("script-src");
  EXPECT_EQ(csp.substr(script_src, csp.find(';', script_src) - script_src).find("unsafe"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  const std::string nonce = csp.substr(csp.find("'nonce-") + 7, csp.find('\'', csp.find("'nonce-") + 7) - csp.find("'nonce-") - 7);
  EXPECT_GE(nonce.size(), 16u);
  const std::string& page = res->body;
  EXPECT_NE(page.find(R"(<script type="importmap" nonce=")" + nonce + R"(">{"imports":{"attnscope/":"/static/"}}</script>)"),
            std::string::npos) << page;
  // every <script> of the page carries the nonce
  for (size_t at = 0; (at = page.find("<script", at)) != std::string::npos; ++at) {
    const std::string tag = page.substr(at, page.find('>', at) - at);
    EXPECT_NE(tag.find("nonce=\"" + nonce + "\""), std::string::npos) << tag;
  }
  const std::string script = config_script(page);
  ASSERT_FALSE(script.empty()) << page;
  const json config = json::parse(script.substr(script.find('{'), script.rfind(';') - script.find('{')));
  EXPECT_EQ(config["mode"], "http");
  EXPECT_EQ(config["runs"], json::array());
  EXPECT_EQ(config["compare"], false);
  EXPECT_EQ(config["captureEnabled"], false);
  // a fresh nonce per response
  auto again = c.Get("/");
  ASSERT_TRUE(again);
  EXPECT_NE(again->get_header_value("Content-Security-Policy"), csp);
}

TEST_F(HttpTest, PageConfigCannotBeBrokenOutOf) {
  auto c = client();
  // The run whose prompt is "</script><script>alert(1)</script>", and hostile ids.
  const std::string evil_id = httplib::detail::encode_query_param(kEvil);
  auto res = c.Get(("/?run=evil&run=" + evil_id + "&compare=1").c_str());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const std::string& page = res->body;
  const std::string script = config_script(page);
  ASSERT_FALSE(script.empty());
  EXPECT_EQ(script.find('<', 1), std::string::npos) << script;  // nothing can open or close a tag inside
  const json config = json::parse(script.substr(script.find('{'), script.rfind(';') - script.find('{')));
  EXPECT_EQ(config["runs"], json::array({"evil"}));  // unknown ids are dropped, never echoed
  EXPECT_EQ(config["compare"], false);
  EXPECT_EQ(page.find("alert(1)"), std::string::npos);
  res = c.Get("/?run=cat&run=evil&compare=1");
  ASSERT_TRUE(res);
  const json both = json::parse(config_script(res->body).substr(config_script(res->body).find('{'),
                                                                config_script(res->body).rfind(';') -
                                                                    config_script(res->body).find('{')));
  EXPECT_EQ(both["runs"], json::array({"cat", "evil"}));
  EXPECT_EQ(both["compare"], true);
}

TEST(HttpCapture, CapturesOneRunAtATimeAndListsIt) {
  const fs::path root = testing::fresh_dir("http-capture");
  fs::create_directories(root / "runs");
  ServeOptions options;
  options.run_paths = {(root / "runs").string()};
  options.port = 0;
  options.model = testing::tiny_model().model;
  options.model_identity = testing::tiny_model().identity;
  auto server = Server::create(options);
  ASSERT_TRUE(server.ok()) << server.error().message;
  ASSERT_TRUE((*server)->start().ok());
  httplib::Client c("127.0.0.1", (*server)->port());

  auto info = c.Get("/api/info");
  ASSERT_TRUE(info);
  EXPECT_EQ(json::parse(info->body)["capture_enabled"], true);
  EXPECT_EQ(json::parse(info->body)["model"], testing::tiny_model().identity.name);

  // Bad requests.
  const std::pair<std::string, const char*> bad[] = {
      {"not json", "body"},
      {"[1]", "body"},
      {R"({})", "prompt"},
      {R"({"prompt": ""})", "prompt"},
      {R"({"prompt": 3})", "prompt"},
      {R"({"prompt": "x", "max_new_tokens": 513})", "max_new_tokens"},
      {R"({"prompt": "x", "max_new_tokens": -1})", "max_new_tokens"},
      {R"({"prompt": "x", "max_new_tokens": "3"})", "max_new_tokens"},
      {R"({"prompt": "x", "max_new_tokens": 2.5})", "max_new_tokens"},
      {R"({"prompt": "x", "path": "/etc"})", "path"},
  };
  for (const auto& [body, name] : bad) {
    auto res = c.Post("/api/capture", body, "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << body;
    EXPECT_NE(json::parse(res->body)["error"].get<std::string>().find(name), std::string::npos) << res->body;
  }
  auto res = c.Post("/api/capture", R"({"prompt": "x"})", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);  // a cross-site form could send text/plain without a preflight
  httplib::Headers origin = {{"Origin", "http://attacker.example"}};
  res = c.Post("/api/capture", origin, R"({"prompt": "x"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403);

  // A short capture completes and its run is listed.
  res = c.Post("/api/capture", R"({"prompt": "the cat sat", "max_new_tokens": 3})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const std::string job = json::parse(res->body)["job"];
  json status;
  for (int i = 0; i < 3000; ++i) {
    auto s = c.Get(("/api/jobs/" + job).c_str());
    ASSERT_TRUE(s);
    status = json::parse(s->body);
    if (status["phase"] == "done" || status["phase"] == "error") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(status["phase"], "done") << status;
  EXPECT_TRUE(status["error"].is_null());
  const std::string run = status["run"];
  EXPECT_EQ(run, job);
  auto runs = json::parse(c.Get("/api/runs")->body)["runs"];
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["id"], run);
  EXPECT_EQ(runs[0]["prompt"], "the cat sat");
  EXPECT_EQ(runs[0]["complete"], true);
  EXPECT_TRUE(fs::exists(root / "runs" / job / "manifest.json"));
  auto m = c.Get(("/api/runs/" + run + "/manifest").c_str());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);

  // A long one: a second request while it runs is refused.
  res = c.Post("/api/capture", R"({"prompt": "a long one", "max_new_tokens": 512})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const std::string long_job = json::parse(res->body)["job"];
  res = c.Post("/api/capture", R"({"prompt": "another"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 409) << res->body;
  EXPECT_TRUE(json::parse(res->body).contains("error"));
  // Stopping the server cancels it; the run stays on disk, incomplete.
  const auto t0 = std::chrono::steady_clock::now();
  server->reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  auto reader = store::RunReader::open((root / "runs" / long_job).string());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
}

TEST(HttpServer, RefusesMissingPathsAndBusyPorts) {
  ServeOptions options;
  options.run_paths = {"/nonexistent/attnscope/runs"};
  auto s = Server::create(options);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("/nonexistent/attnscope/runs"), std::string::npos);

  const fs::path root = testing::fresh_dir("http-busy");
  options.run_paths = {root.string()};
  options.port = 0;
  auto a = Server::create(options);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->start().ok());
  options.port = (*a)->port();
  auto b = Server::create(options);
  ASSERT_TRUE(b.ok());
  auto started = (*b)->start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.error().message.find(std::to_string(options.port)), std::string::npos);
}

}  // namespace
}  // namespace attnscope::server
