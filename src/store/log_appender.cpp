#include "store/log_appender.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "store/file_util.h"

namespace attnscope::store {

using format::IndexEntry;
using format::RecordHeader;

namespace {

constexpr size_t kFlushBytes = 4u << 20;  // pending log bytes that trigger a write(2)
constexpr size_t kIndexFlushEntries = 4096;

}  // namespace

LogAppender::LogAppender(std::string dir, uint64_t run_uid, Precision precision, int32_t n_layers,
                         int32_t n_heads)
    : dir_(std::move(dir)),
      log_path_(path_join(dir_, format::kLogFile)),
      index_path_(path_join(dir_, format::kIndexTemp)),
      run_uid_(run_uid),
      precision_(precision),
      n_layers_(n_layers),
      n_heads_(n_heads) {}

LogAppender::~LogAppender() {
  close_fd(&log_fd_);
  close_fd(&index_fd_);
}

void LogAppender::close_log() { close_fd(&log_fd_); }

Status LogAppender::open() {
  log_fd_ = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (log_fd_ < 0) return make_error("{}: cannot create: {}", log_path_, errno_text(errno));
  format::LogHeader h{};
  std::memcpy(h.magic, format::kLogMagic, sizeof h.magic);
  h.format_version = kFormatVersion;
  h.header_size = sizeof h;
  h.run_uid = run_uid_;
  h.n_layers = n_layers_;
  h.n_heads = n_heads_;
  h.precision = static_cast<uint8_t>(precision_);
  h.record_header_size = sizeof(RecordHeader);
  h.checksum = checksum64(&h, offsetof(format::LogHeader, checksum));
  ATTN_RETURN_IF_ERROR(write_all(log_fd_, &h, sizeof h, log_path_));
  ATTN_RETURN_IF_ERROR(fsync_path_fd(log_fd_, log_path_));
  log_size_ = sizeof h;

  index_fd_ = ::open(index_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (index_fd_ < 0) return make_error("{}: cannot create: {}", index_path_, errno_text(errno));
  const format::IndexHeader placeholder{};  // filled in by finish_files()
  return write_all(index_fd_, &placeholder, sizeof placeholder, index_path_);
}

Status LogAppender::run(const WriteJob& job) {
  if (const auto* rows = std::get_if<RowsJob>(&job)) return append_rows(*rows);
  return append_token(std::get<TokenJob>(job));
}

void LogAppender::discard_tail() {
  if (log_fd_ >= 0 && ::ftruncate(log_fd_, static_cast<off_t>(log_size_)) != 0) {
    // ignored: the error being reported is the one that matters
  }
  pending_.clear();
}

Status LogAppender::flush_log() {
  if (pending_.empty()) return ok_status();
  ATTN_RETURN_IF_ERROR(write_all(log_fd_, pending_.data(), pending_.size(), log_path_));
  log_size_ += pending_.size();
  pending_.clear();
  return ok_status();
}

Status LogAppender::flush_index() {
  if (index_pending_.empty()) return ok_status();
  const size_t n = index_pending_.size() * sizeof(IndexEntry);
  ATTN_RETURN_IF_ERROR(write_all(index_fd_, index_pending_.data(), n, index_path_));
  index_hash_.update(index_pending_.data(), n);
  index_entries_ += index_pending_.size();
  index_pending_.clear();
  return ok_status();
}

// Completes the record at pending_[header_at..]: fills in h (its payload_checksum is the
// caller's) and copies it in front of its payload, which is the rest of pending_.
void LogAppender::seal_record(RecordHeader& h, size_t header_at) {
  const size_t payload_at = header_at + sizeof(RecordHeader);
  h.magic = format::kRecordMagic;
  h.stored_size = static_cast<uint32_t>(pending_.size() - payload_at);
  h.reserved = 0;
  h.header_checksum = checksum32(&h, offsetof(RecordHeader, header_checksum));
  std::memcpy(pending_.data() + header_at, &h, sizeof h);
}

// One block as the engine's threads encoded it (copy_rows in writer.cpp).
Status LogAppender::append_block(int32_t layer, int32_t head, const EncodedHead& from, const EncodedBlock& b) {
  if (b.offset + b.stored_size > from.bytes.size()) {
    return make_error("{}: block of layer {} head {} rows {}+{} lies outside its buffer", log_path_, layer, head,
                      b.row_begin, b.n_rows);
  }
  const size_t header_at = pending_.size();
  pending_.resize(header_at + sizeof(RecordHeader));
  pending_.insert(pending_.end(), from.bytes.begin() + static_cast<ptrdiff_t>(b.offset),
                  from.bytes.begin() + static_cast<ptrdiff_t>(b.offset + b.stored_size));
  RecordHeader h{};
  h.kind = static_cast<uint8_t>(format::RecordKind::kAttention);
  h.dtype = static_cast<uint8_t>(precision_);
  h.codec = static_cast<uint8_t>(b.codec);
  h.layer = layer;
  h.head = head;
  h.row_begin = b.row_begin;
  h.n_rows = b.n_rows;
  h.raw_size = b.raw_size;
  h.payload_checksum = b.checksum;
  seal_record(h, header_at);
  index_pending_.push_back(IndexEntry{layer, head, b.row_begin, b.n_rows, log_size_ + header_at,
                                      h.stored_size, h.raw_size});
  if (pending_.size() >= kFlushBytes) ATTN_RETURN_IF_ERROR(flush_log());
  if (index_pending_.size() >= kIndexFlushEntries) ATTN_RETURN_IF_ERROR(flush_index());
  return ok_status();
}

Status LogAppender::append_rows(const RowsJob& job) {
  if (!job.error.empty()) {
    return make_error("{}: cannot encode the attention of layer {}: {}", log_path_, job.layer, job.error);
  }
  // The blocks in the order (row block, head); every head has the same blocks.
  const size_t n_blocks = job.heads.empty() ? 0 : job.heads[0].blocks.size();
  for (const EncodedHead& head : job.heads) {
    if (head.blocks.size() != n_blocks) {
      return make_error("{}: the heads of layer {} were cut into different blocks", log_path_, job.layer);
    }
  }
  for (size_t b = 0; b < n_blocks; ++b) {
    for (size_t h = 0; h < job.heads.size(); ++h) {
      ATTN_RETURN_IF_ERROR(append_block(job.layer, static_cast<int32_t>(h), job.heads[h], job.heads[h].blocks[b]));
    }
  }
  return flush_log();
}

Status LogAppender::append_token(const TokenJob& job) {
  const TokenRecord& token = job.token;
  const size_t header_at = pending_.size();
  pending_.resize(header_at + sizeof(RecordHeader));
  const format::TokenPayload p{token.id, 0, token.byte_begin, token.byte_end};
  const auto* pb = reinterpret_cast<const uint8_t*>(&p);
  pending_.insert(pending_.end(), pb, pb + sizeof p);
  pending_.insert(pending_.end(), token.text.begin(), token.text.end());
  RecordHeader h{};
  h.kind = static_cast<uint8_t>(format::RecordKind::kToken);
  h.flags = static_cast<uint8_t>((token.generated ? format::kTokenGenerated : 0) |
                                 (token.special ? format::kTokenSpecial : 0));
  h.layer = -1;
  h.head = -1;
  h.row_begin = job.position;
  h.raw_size = static_cast<uint32_t>(sizeof p + token.text.size());
  h.payload_checksum = checksum64(pending_.data() + header_at + sizeof h, h.raw_size);  // stored as is
  seal_record(h, header_at);
  return flush_log();
}

Status LogAppender::finish_files() {
  ATTN_RETURN_IF_ERROR(flush_log());
  ATTN_RETURN_IF_ERROR(fsync_path_fd(log_fd_, log_path_));
  ATTN_RETURN_IF_ERROR(flush_index());
  format::IndexHeader h{};
  std::memcpy(h.magic, format::kIndexMagic, sizeof h.magic);
  h.format_version = kFormatVersion;
  h.header_size = sizeof h;
  h.run_uid = run_uid_;
  h.n_layers = n_layers_;
  h.n_heads = n_heads_;
  h.n_entries = index_entries_;
  h.log_size = log_size_;
  h.entries_checksum = index_hash_.digest();
  h.header_checksum = checksum64(&h, offsetof(format::IndexHeader, header_checksum));
  ATTN_RETURN_IF_ERROR(pwrite_all(index_fd_, &h, sizeof h, 0, index_path_));
  ATTN_RETURN_IF_ERROR(fsync_path_fd(index_fd_, index_path_));
  close_fd(&index_fd_);
  const std::string final_path = path_join(dir_, format::kIndexFile);
  if (::rename(index_path_.c_str(), final_path.c_str()) != 0) {
    return make_error("{}: cannot rename to {}: {}", index_path_, final_path, errno_text(errno));
  }
  return ok_status();
}

}  // namespace attnscope::store
