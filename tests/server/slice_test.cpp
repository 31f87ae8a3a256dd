// The slice service against RunReader: a stride-1 matrix is exactly read()/aggregate(),
// a strided one is the max-pool of read() computed here, grid thumbnails are the
// max-pool of read() scaled to 255, and every bad parameter is an error naming it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "server/slice.h"
#include "server/server_test_util.h"

namespace attnscope::server {
namespace {

using store::Aggregate;
using store::Range;

class SliceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(testing::fresh_dir("slice"));
    testing::capture_run(*dir_, "the cat sat on the mat and the dog sat on the log", 6);
    auto r = store::RunReader::open(dir_->string());
    ASSERT_TRUE(r.ok()) << r.error().message;
    reader_ = r->release();
  }
  static void TearDownTestSuite() {
    delete reader_;
    delete dir_;
  }
  static const store::RunReader& reader() { return *reader_; }
  static int32_t n() { return reader_->n_rows(); }

  static std::filesystem::path* dir_;
  static store::RunReader* reader_;
};
std::filesystem::path* SliceTest::dir_ = nullptr;
store::RunReader* SliceTest::reader_ = nullptr;

TEST_F(SliceTest, RunIsLargeEnoughForTheTests) {
  EXPECT_GT(n(), 20);
  EXPECT_EQ(reader().n_layers(), 3);
  EXPECT_EQ(reader().n_heads(), 10);
}

TEST_F(SliceTest, Stride1EqualsReadAndAggregate) {
  const Aggregate kinds[] = {Aggregate::kNone, Aggregate::kHeadMean, Aggregate::kHeadMax, Aggregate::kLayerMean,
                             Aggregate::kRollout};
  const std::pair<Range, Range> ranges[] = {{{0, n()}, {0, n()}}, {{3, n() - 2}, {2, 11}}, {{5, 5}, {0, 4}}};
  for (Aggregate kind : kinds) {
    for (int32_t layer : {0, 2}) {
      for (const auto& [q, k] : ranges) {
        SCOPED_TRACE(fmt::format("{} layer {} q {}..{} k {}..{}", store::aggregate_name(kind), layer, q.begin, q.end,
                                 k.begin, k.end));
        MatrixQuery query{kind, layer, 7, q, k, 1};
        auto m = matrix(reader(), query);
        ASSERT_TRUE(m.ok()) << m.error().message;
        auto expected = reader().aggregate(kind, layer, 7, q, k);
        ASSERT_TRUE(expected.ok()) << expected.error().message;
        EXPECT_EQ(m->rows, q.size());
        EXPECT_EQ(m->cols, k.size());
        EXPECT_EQ(m->data, *expected);
      }
    }
  }
}

TEST_F(SliceTest, StrideIsTheMaxPoolOfRead) {
  for (int32_t stride : {2, 3, 7, 1000}) {
    for (const auto& [q, k] : {std::pair<Range, Range>{{0, n()}, {0, n()}}, {{4, n() - 1}, {1, n() - 3}}}) {
      SCOPED_TRACE(fmt::format("stride {} q {}..{} k {}..{}", stride, q.begin, q.end, k.begin, k.end));
      auto full = reader().read(1, 3, q, k);
      ASSERT_TRUE(full.ok());
      const int32_t rows = (q.size() + stride - 1) / stride, cols = (k.size() + stride - 1) / stride;
      std::vector<float> expected(static_cast<size_t>(rows) * cols, 0.0f);
      for (int32_t i = 0; i < q.size(); ++i) {
        for (int32_t j = 0; j < k.size(); ++j) {
          float& cell = expected[static_cast<size_t>(i / stride) * cols + j / stride];
          cell = std::max(cell, (*full)[static_cast<size_t>(i) * k.size() + j]);
        }
      }
      auto m = matrix(reader(), MatrixQuery{Aggregate::kNone, 1, 3, q, k, stride});
      ASSERT_TRUE(m.ok()) << m.error().message;
      EXPECT_EQ(m->rows, rows);
      EXPECT_EQ(m->cols, cols);
      EXPECT_EQ(m->data, expected);
    }
  }
}

TEST_F(SliceTest, StridedAggregateIsTheMaxPoolOfTheAggregate) {
  const Range q{0, n()}, k{0, n()};
  for (Aggregate kind : {Aggregate::kHeadMean, Aggregate::kRollout}) {
    auto full = reader().aggregate(kind, 2, 0, q, k);
    ASSERT_TRUE(full.ok());
    auto m = matrix(reader(), MatrixQuery{kind, 2, 0, q, k, 4});
    ASSERT_TRUE(m.ok()) << m.error().message;
    for (int32_t i = 0; i < m->rows; ++i) {
      for (int32_t j = 0; j < m->cols; ++j) {
        float expected = 0;
        for (int32_t a = 4 * i; a < std::min(n(), 4 * i + 4); ++a) {
          for (int32_t b = 4 * j; b < std::min(n(), 4 * j + 4); ++b) {
            expected = std::max(expected, (*full)[static_cast<size_t>(a) * n() + b]);
          }
        }
        EXPECT_EQ(m->data[static_cast<size_t>(i) * m->cols + j], expected) << i << "," << j;
      }
    }
  }
}

TEST_F(SliceTest, GridIsTheScaledMaxPoolOfRead) {
  for (int32_t size : {1, 8, n(), 40, 256}) {  // fewer, as many and more cells than rows
    SCOPED_TRACE(fmt::format("size {}", size));
    auto g = grid(reader(), size);
    ASSERT_TRUE(g.ok()) << g.error().message;
    ASSERT_EQ(g->n_layers, 3);
    ASSERT_EQ(g->n_heads, 10);
    ASSERT_EQ(g->data.size(), size_t{3} * 10 * size * size);
    for (int32_t l = 0; l < 3; ++l) {
      for (int32_t h = 0; h < 10; h += 3) {
        auto full = reader().read(l, h, {0, n()}, {0, n()});
        ASSERT_TRUE(full.ok());
        // cell i covers [floor(i n / size), max(that + 1, floor((i + 1) n / size)))
        auto lo = [&](int32_t i) { return static_cast<int32_t>(int64_t{i} * n() / size); };
        auto hi = [&](int32_t i) { return std::max(lo(i) + 1, lo(i + 1)); };
        std::vector<float> pooled(static_cast<size_t>(size) * size);
        float peak = 0;
        for (int32_t i = 0; i < size; ++i) {
          for (int32_t j = 0; j < size; ++j) {
            float m = 0;
            for (int32_t a = lo(i); a < hi(i); ++a) {
              for (int32_t b = lo(j); b < hi(j); ++b) m = std::max(m, (*full)[static_cast<size_t>(a) * n() + b]);
            }
            pooled[static_cast<size_t>(i) * size + j] = m;
            peak = std::max(peak, m);
          }
        }
        ASSERT_GT(peak, 0);
        const uint8_t* thumb = g->data.data() + (static_cast<size_t>(l) * 10 + h) * size * size;
        int max_seen = 0;
        for (size_t c = 0; c < pooled.size(); ++c) {
          EXPECT_NEAR(thumb[c], pooled[c] / peak * 255.0, 0.5 + 1e-3) << "layer " << l << " head " << h << " cell " << c;
          max_seen = std::max<int>(max_seen, thumb[c]);
        }
        EXPECT_EQ(max_seen, 255);
      }
    }
  }
}

TEST_F(SliceTest, ParsesParametersStrictlyAndWithDefaults) {
  const RunShape shape = shape_of(reader());
  auto q = parse_matrix_query({}, shape);
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->agg, Aggregate::kNone);
  EXPECT_EQ(q->q.begin, 0);
  EXPECT_EQ(q->q.end, n());
  EXPECT_EQ(q->k.end, n());
  EXPECT_EQ(q->stride, 1);
  q = parse_matrix_query({{"layer", "2"}, {"head", "9"}, {"agg", "head-max"}, {"q0", "1"}, {"q1", "5"},
                          {"k0", "0"}, {"k1", "3"}, {"stride", "2"}},
                         shape);
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->agg, Aggregate::kHeadMax);
  EXPECT_EQ(q->layer, 2);
  EXPECT_EQ(q->head, 9);
  EXPECT_EQ(q->q.begin, 1);
  EXPECT_EQ(q->q.end, 5);
  EXPECT_EQ(q->k.end, 3);
  EXPECT_EQ(q->stride, 2);
  // layer is ignored by layer-mean, head by everything but none
  EXPECT_TRUE(parse_matrix_query({{"agg", "layer-mean"}, {"layer", "99"}}, shape).ok());
  EXPECT_TRUE(parse_matrix_query({{"agg", "rollout"}, {"head", "99"}}, shape).ok());
}

TEST_F(SliceTest, EveryBadParameterIsAnErrorNamingIt) {
  const RunShape shape = shape_of(reader());
  const std::string big = std::to_string(n() + 1);
  const std::vector<std::pair<Params, std::string>> cases = {
      {{{"layer", "3"}}, "layer"},
      {{{"layer", "-1"}}, "layer"},
      {{{"layer", "x"}}, "layer"},
      {{{"layer", ""}}, "layer"},
      {{{"layer", "1.5"}}, "layer"},
      {{{"layer", "2147483648"}}, "layer"},
      {{{"head", "10"}}, "head"},
      {{{"head", "+1"}}, "head"},
      {{{"head", " 1"}}, "head"},
      {{{"head", "1 "}}, "head"},
      {{{"head", "0x1"}}, "head"},
      {{{"agg", "mean"}}, "agg"},
      {{{"agg", ""}}, "agg"},
      {{{"q0", "-1"}}, "q0"},
      {{{"q0", "5"}, {"q1", "4"}}, "q0"},
      {{{"q1", big}}, "q1"},
      {{{"q1", "1e3"}}, "q1"},
      {{{"k0", "-2"}}, "k0"},
      {{{"k0", "3"}, {"k1", "2"}}, "k0"},
      {{{"k1", big}}, "k1"},
      {{{"k1", "99999999999999999999"}}, "k1"},
      {{{"stride", "0"}}, "stride"},
      {{{"stride", "-3"}}, "stride"},
      {{{"stride", "two"}}, "stride"},
      {{{"q0", "1"}, {"q0", "2"}}, "q0"},
      {{{"bogus", "1"}}, "bogus"},
  };
  for (const auto& [params, name] : cases) {
    std::string text;
    for (const auto& [k, v] : params) text += k + "=" + v + " ";
    SCOPED_TRACE(text);
    auto q = parse_matrix_query(params, shape);
    ASSERT_FALSE(q.ok());
    EXPECT_NE(q.error().message.find(name), std::string::npos) << q.error().message;
  }
  // matrix() checks a query it is given directly too
  EXPECT_FALSE(matrix(reader(), MatrixQuery{Aggregate::kNone, 0, 10, {0, 1}, {0, 1}, 1}).ok());
  EXPECT_FALSE(matrix(reader(), MatrixQuery{Aggregate::kNone, 0, 0, {0, n() + 1}, {0, 1}, 1}).ok());
}

TEST(Slice, TooManyCellsNamesStride) {
  const RunShape shape{1, 1, 5000};
  auto q = parse_matrix_query({}, shape);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.error().message.find("stride"), std::string::npos) << q.error().message;
  EXPECT_TRUE(parse_matrix_query({{"stride", "3"}}, shape).ok());
  // exactly 4M cells is allowed
  EXPECT_TRUE(check_matrix_query(MatrixQuery{Aggregate::kNone, 0, 0, {0, 2048}, {0, 2048}, 1}, {1, 1, 2048}).ok());
  EXPECT_FALSE(check_matrix_query(MatrixQuery{Aggregate::kNone, 0, 0, {0, 2049}, {0, 2048}, 1}, {1, 1, 2049}).ok());
}

TEST(Slice, GridSizeIsChecked) {
  EXPECT_EQ(*parse_grid_size({}), kDefaultGridSize);
  EXPECT_EQ(*parse_grid_size({{"size", "1"}}), 1);
  EXPECT_EQ(*parse_grid_size({{"size", "256"}}), 256);
  for (const char* bad : {"0", "257", "-1", "x", "", "64.0", "1e2"}) {
    auto s = parse_grid_size({{"size", bad}});
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.error().message.find("size"), std::string::npos) << s.error().message;
  }
  auto s = parse_grid_size({{"sise", "4"}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("sise"), std::string::npos);
}

TEST_F(SliceTest, GridCacheKeepsAGridWhileTheRunIsUnchanged) {
  GridCache cache;
  auto reader_ptr = std::shared_ptr<const store::RunReader>(&reader(), [](const store::RunReader*) {});
  OpenRun run{"r", stamp_of(*dir_), reader_ptr};
  auto a = cache.get(run, 16);
  auto b = cache.get(run, 16);
  auto c = cache.get(run, 8);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_NE(a->get(), c->get());
  run.stamp.log_size += 1;  // the run changed (a capture appended)
  auto d = cache.get(run, 16);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(a->get(), d->get());
  EXPECT_EQ((*a)->data, (*d)->data);
}

}  // namespace
}  // namespace attnscope::server
