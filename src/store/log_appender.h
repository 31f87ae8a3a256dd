// The writing half of RunWriter: turns write jobs into checksummed records appended to
// attention.log, and their index entries into index.bin.tmp. Used by one thread at a
// time: the writer thread while it runs, then finish() on the caller's thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "attnscope/result.h"
#include "attnscope/store.h"
#include "store/checksum.h"
#include "store/codec.h"
#include "store/format.h"
#include "store/write_queue.h"

namespace attnscope::store {

class LogAppender {
 public:
  LogAppender(std::string dir, uint64_t run_uid, Precision precision, int32_t n_layers, int32_t n_heads);
  ~LogAppender();  // closes the files
  LogAppender(const LogAppender&) = delete;
  LogAppender& operator=(const LogAppender&) = delete;

  // Creates attention.log with its header (fsynced) and index.bin.tmp.
  Status open();
  // Appends the job's records with one write(2) at the end (a job is one delivery or one
  // token). After an error, call discard_tail().
  Status run(const WriteJob& job);
  // Cuts a torn write off the log so it ends on a record boundary (best effort: readers
  // stop at a torn record anyway) and drops what was not written.
  void discard_tail();
  // fsyncs the log, completes index.bin.tmp (header, fsync) and renames it to index.bin.
  Status finish_files();
  void close_log();

  uint64_t log_size() const { return log_size_; }
  const std::string& log_path() const { return log_path_; }

 private:
  Status append_rows(const RowsJob& job);
  Status append_token(const TokenJob& job);
  Status append_block(int32_t layer, int32_t head, const EncodedHead& from, const EncodedBlock& b);
  void seal_record(format::RecordHeader& h, size_t header_at);
  Status flush_log();
  Status flush_index();

  std::string dir_, log_path_, index_path_;
  uint64_t run_uid_;
  Precision precision_;
  int32_t n_layers_, n_heads_;
  int log_fd_ = -1;
  int index_fd_ = -1;
  uint64_t log_size_ = 0;  // bytes handed to write(2)

  std::vector<uint8_t> pending_;  // records not yet written (< kFlushBytes + one block)
  std::vector<format::IndexEntry> index_pending_;
  uint64_t index_entries_ = 0;
  Checksum64 index_hash_;
};

}  // namespace attnscope::store
