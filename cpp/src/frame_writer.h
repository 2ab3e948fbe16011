// Encoders for server → client frames (docs/protocol.md §5). Internal.
//
//   welcome   {"t":"welcome","v":1,"epoch":E,"seq":S,"limits":{…}}
//   changes   {"t":"changes","seq":S,"changes":[change…],"more"?:true}
//   snapshot  {"t":"snapshot","sub":ID,"c":C,"seq":S,"rows":[row…],"more"?:true}
//   synced    {"t":"synced","seq":S}
//   ack       {"t":"ack","id":ID,"seq":S,"result"?:any}
//   reject    {"t":"reject","id":ID,"code":N,"error":NAME,"message":M}
//   sub-error {"t":"sub-error","sub":ID,"code":N,"error":NAME,"message":M}
//   page      {"t":"page","id":ID,"c":C,"seq":S,"rows":[row…],"more"?:true,"cut"?:true}
//   page-error {"t":"page-error","id":ID,"code":N,"error":NAME,"message":M}
//   error     {"t":"error","code":N,"error":NAME,"message":M}
//   presence  {"t":"presence","entries":[entry…]} or, answering a watch,
//             {"t":"presence","all":true,"you":SOCKET,"entries":[entry…]}
//             entry = {"socket","tab","user","state"?} (no state: gone)
//   presence-error {"t":"presence-error","tab"?:T,"code":N,"error":NAME,"message":M}

#ifndef SEQSYNC_FRAME_WRITER_H_
#define SEQSYNC_FRAME_WRITER_H_

#include <string>
#include <string_view>
#include <vector>

#include "seqsync/limits.h"
#include "seqsync/status.h"

namespace seqsync {

// `s` as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view s);

std::string WelcomeFrame(std::string_view epoch, Seq seq, std::string_view limits_json);
std::string SyncedFrame(Seq seq);
// `result_json` is empty for a mutation, JSON text for a command.
std::string AckFrame(std::string_view id, Seq seq, std::string_view result_json);
// The ack around its seq, for a caller that gets the seq elsewhere (SQL):
// AckFrame = AckFramePrefix(id) + seq + AckFrameSuffix(result_json).
std::string AckFramePrefix(std::string_view id);
std::string AckFrameSuffix(std::string_view result_json);
std::string RejectFrame(std::string_view id, const Status& why);
std::string SubErrorFrame(std::string_view sub, const Status& why);
std::string PageErrorFrame(std::string_view id, const Status& why);
std::string ErrorFrame(const Status& why);
// `state_json` empty: the entry is gone.
std::string PresenceEntry(std::string_view socket, std::string_view tab, std::string_view user,
                          std::string_view state_json);
// `entries`: entries joined by commas. A non-empty `you` makes it the whole
// view (all:true) for the socket `you`.
std::string PresenceFrame(std::string_view entries, std::string_view you);
// `tab` empty: the frame named none (a watch).
std::string PresenceErrorFrame(std::string_view tab, const Status& why);

// Accumulates the entries of one unit's frames of one type, splitting them
// into frames of about `chunk_bytes`. All frames carry the same seq; every
// frame but the last carries "more":true, and the last does too unless the
// unit ends with it.
class ChunkedFrames {
 public:
  // `head` is the frame's text up to and including the array's "[", e.g.
  // {"t":"changes","seq":5,"changes":[
  ChunkedFrames(std::string head, std::size_t chunk_bytes);

  // Appends one array element (JSON text).
  void Add(std::string_view element);
  // Appends a whole pre-built array body (elements without the brackets) as
  // one chunk, e.g. rows built by SQLite.
  void AddChunk(std::string_view elements);

  bool empty() const { return bodies_.empty() && current_.empty() && taken_ == 0; }

  // Appends to `out` the frames that are complete and cannot be the unit's
  // last (all carry "more":true), so a long snapshot leaves as it is read.
  void TakeReady(std::vector<std::string>* out);

  // Appends the frames to `out`. If `ends_unit`, the last frame has no
  // "more". If there were no elements and `emit_if_empty`, emits one frame
  // with an empty array. `last_fields` (",\"k\":v…") go in the last frame only.
  void Finish(bool ends_unit, bool emit_if_empty, std::vector<std::string>* out,
              std::string_view last_fields = {});

 private:
  std::string head_;
  std::size_t chunk_bytes_;
  std::string current_;
  std::vector<std::string> bodies_;
  std::size_t taken_ = 0;  // frames already handed out by TakeReady
};

}  // namespace seqsync

#endif  // SEQSYNC_FRAME_WRITER_H_
