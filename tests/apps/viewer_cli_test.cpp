// `attnscope serve` and `attnscope render` as a user meets them: help with examples,
// usage errors (exit 2) and runtime errors (exit 1) naming what was wrong, the URL
// printed on stdout once listening, Ctrl-C stopping the server cleanly, captures from
// the page with --model (into ./runs by default), and static pages inline or chunked.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/process.h"
#include "support/tiny_model.h"

namespace attnscope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::cli_path;
using testing::run_process;

testing::ProcessResult cli(std::vector<std::string> args) {
  args.insert(args.begin(), cli_path());
  return run_process(args);
}

// Per process (ctest runs tests in parallel), removed at exit.
const fs::path& process_dir() {
  struct Dir {
    fs::path path = fs::temp_directory_path() / "attnscope-tests" / fmt::format("viewer-cli-{}", getpid());
    ~Dir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = process_dir() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

const std::string& tiny_model_path() {
  static const std::string path = [] {
    testing::TinyModelSpec spec;
    spec.n_ctx = 256;
    const fs::path p = process_dir() / "tiny.gguf";
    auto bytes = testing::build_tiny_model(spec);
    EXPECT_TRUE(bytes.ok());
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes->data()),
                                             static_cast<std::streamsize>(bytes->size()));
    return p.string();
  }();
  return path;
}

void capture(const fs::path& dir, const std::string& prompt) {
  auto r = cli({"capture", "-m", tiny_model_path(), "-p", prompt, "-n", "3", "-o", dir.string(), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

// `attnscope serve ...` in the background, in `cwd`; url() waits for its stdout line.
class ServeProcess {
 public:
  ServeProcess(std::vector<std::string> args, const fs::path& cwd) {
    args.insert(args.begin(), {cli_path(), "serve"});
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      close(out[0]);
      if (chdir(cwd.c_str()) != 0) _exit(126);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    out_ = out[0];
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
  }
  // The first stdout line ("" if the process ended first).
  std::string url() {
    std::string line;
    char c;
    while (read(out_, &c, 1) == 1 && c != '\n') line += c;
    return line;
  }
  // SIGINT, then the exit code (-1 if it had to be killed after 10 s).
  int interrupt() {
    kill(pid_, SIGINT);
    for (int i = 0; i < 1000; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

TEST(ViewerCli, HelpHasExamples) {
  for (const char* c : {"serve", "render"}) {
    auto r = cli({c, "--help"});
    EXPECT_EQ(r.exit_code, 0) << c;
    EXPECT_NE(r.out.find("examples:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(std::string("attnscope ") + c + " "), std::string::npos) << r.out;
  }
  auto r = cli({"--help"});
  EXPECT_NE(r.out.find("serve"), std::string::npos);
  EXPECT_NE(r.out.find("render"), std::string::npos);
}

TEST(ViewerCli, UsageAndRuntimeErrors) {
  const fs::path dir = fresh_dir("errors");
  struct Case {
    std::vector<std::string> args;
    int code;
    const char* says;
  };
  const Case cases[] = {
      {{"serve"}, 2, "run directory"},
      {{"serve", dir.string(), "--port", "70000"}, 2, "port"},
      {{"serve", (dir / "missing").string()}, 1, "missing"},
      {{"serve", dir.string(), "--model", (dir / "nope.gguf").string()}, 1, "nope.gguf"},
      {{"render", (dir / "run").string()}, 2, "output"},
      {{"render", "a", "b", "-o", (dir / "o").string()}, 2, "one run"},
      {{"render", "--compare", "a", "-o", (dir / "o").string()}, 2, "two run"},
      {{"render", (dir / "missing").string(), "-o", (dir / "o").string()}, 1, "missing"},
      {{"render", (dir / "missing").string(), "-o", (dir / "o").string(), "--max-inline-mb", "-1"}, 2,
       "max-inline-mb"},
  };
  for (const auto& c : cases) {
    auto r = cli(c.args);
    std::string cmd;
    for (const auto& a : c.args) cmd += a + " ";
    EXPECT_EQ(r.exit_code, c.code) << cmd << "\n" << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << cmd << "\n" << r.err;
  }
}

TEST(ViewerCli, ServePrintsItsUrlAndStopsOnCtrlC) {
  const fs::path dir = fresh_dir("serve");
  capture(dir / "runs" / "cat", "the cat");
  ServeProcess server({(dir / "runs").string(), "--port", "0"}, dir);
  const std::string url = server.url();
  ASSERT_EQ(url.rfind("http://127.0.0.1:", 0), 0u) << url;
  ASSERT_EQ(url.back(), '/');
  httplib::Client c("127.0.0.1", port_of(url));
  auto res = c.Get("/api/runs");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const json runs = json::parse(res->body)["runs"];
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["id"], "cat");
  res = c.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  // An idle keep-alive connection (a browser tab) does not hold Ctrl-C up.
  httplib::Client keep("127.0.0.1", port_of(url));
  keep.set_keep_alive(true);
  ASSERT_TRUE(keep.Get("/api/info"));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(server.interrupt(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST(ViewerCli, ServeWithAModelCapturesIntoRuns) {
  const fs::path dir = fresh_dir("serve-model");
  ServeProcess server({"--model", tiny_model_path(), "--port", "0"}, dir);
  const std::string url = server.url();
  ASSERT_FALSE(url.empty());
  httplib::Client c("127.0.0.1", port_of(url));
  auto res = c.Get("/api/info");
  ASSERT_TRUE(res);
  EXPECT_EQ(json::parse(res->body)["capture_enabled"], true);
  res = c.Post("/api/capture", R"({"prompt": "the dog", "max_new_tokens": 2})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const std::string job = json::parse(res->body)["job"];
  json status;
  for (int i = 0; i < 1500; ++i) {
    status = json::parse(c.Get(("/api/jobs/" + job).c_str())->body);
    if (status["phase"] == "done" || status["phase"] == "error") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(status["phase"], "done") << status;
  EXPECT_TRUE(fs::exists(dir / "runs" / job / "manifest.json"));
  const json runs = json::parse(c.Get("/api/runs")->body)["runs"];
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0]["id"], status["run"]);
  EXPECT_EQ(server.interrupt(), 0);
}

TEST(ViewerCli, RenderWritesAStaticPage) {
  const fs::path dir = fresh_dir("render");
  capture(dir / "a" / "cat", "the cat");
  capture(dir / "b" / "cat", "a cat");
  auto r = cli({"render", (dir / "a" / "cat").string(), "-o", (dir / "out").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "out" / "index.html"));
  EXPECT_FALSE(fs::exists(dir / "out" / "data"));
  EXPECT_NE(r.err.find("inside the page"), std::string::npos) << r.err;

  r = cli({"render", (dir / "a" / "cat").string(), "-o", (dir / "chunked").string(), "--max-inline-mb", "0.001"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "chunked" / "data" / "cat" / "L0_H0-4.js"));
  EXPECT_TRUE(fs::exists(dir / "chunked" / "data" / "cat" / "manifest.js"));

  r = cli({"render", "--compare", (dir / "a" / "cat").string(), (dir / "b" / "cat").string(), "-o",
           (dir / "cmp").string(), "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  std::ifstream in(dir / "cmp" / "index.html");
  const std::string page((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(page.find(R"("runs":["cat","cat-2"])"), std::string::npos);

  // Not over a directory that is not a render.
  fs::create_directories(dir / "mine");
  std::ofstream(dir / "mine" / "notes.txt") << "x";
  r = cli({"render", (dir / "a" / "cat").string(), "-o", (dir / "mine").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not empty"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace attnscope
