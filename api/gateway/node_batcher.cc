#include "api/gateway/node_batcher.h"

#include <algorithm>
#include <vector>

#include "api/grpc/convert.h"

namespace gojodb::gateway {

struct NodeBatcher::Pending {
  const v1::ShardBatchItem* item;  // the caller's, until the call is sent
  Clock::time_point deadline;
  bool sent = false;
  bool done = false;
  Status status;
  v1::ShardBatchResult result;
  std::condition_variable cv;
};

Status NodeBatcher::Call(const v1::ShardBatchItem& item, Clock::time_point deadline,
                         v1::ShardBatchResult* out) {
  Pending me;
  me.item = &item;
  me.deadline = deadline;
  std::unique_lock lock(mu_);
  queue_.push_back(&me);
  while (!me.done) {
    if (!me.sent && queue_.front() == &me && in_flight_ < options_.max_in_flight) {
      // First in line with a call free: send what waits (this request among it).
      SendFront(lock);
      continue;
    }
    if (me.sent) {
      me.cv.wait(lock);  // the call has its deadline; it ends
      continue;
    }
    if (me.cv.wait_until(lock, deadline) == std::cv_status::timeout && !me.sent && !me.done) {
      queue_.erase(std::find(queue_.begin(), queue_.end(), &me));
      // The next in line may be free to go now.
      if (!queue_.empty()) queue_.front()->cv.notify_one();
      return Status::Unavailable(
                 "the request waited until its deadline for a call to its storage node; it "
                 "was not sent")
          .WithDetail("reason", std::string(kReasonNotSent));
    }
  }
  if (!me.status.ok()) return me.status;
  *out = std::move(me.result);
  return Status::OK();
}

void NodeBatcher::SendFront(std::unique_lock<std::mutex>& lock) {
  std::vector<Pending*> batch;
  size_t bytes = 0;
  while (!queue_.empty() && batch.size() < static_cast<size_t>(options_.max_items)) {
    Pending* p = queue_.front();
    const size_t size = p->item->ByteSizeLong();
    if (!batch.empty() && bytes + size > options_.max_bytes) break;
    bytes += size;
    p->sent = true;
    batch.push_back(p);
    queue_.pop_front();
  }
  ++in_flight_;
  ++calls_;
  items_ += batch.size();
  // The next in line may send too, if a call is still free.
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  lock.unlock();

  const auto now = Clock::now();
  Clock::time_point last = now;
  v1::ShardBatchRequest req;
  for (Pending* p : batch) {
    last = std::max(last, p->deadline);
    auto* item = req.add_items();
    *item = *p->item;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(p->deadline - now).count();
    item->set_timeout_ms(static_cast<uint32_t>(std::clamp<int64_t>(left, 1, UINT32_MAX)));
  }
  v1::ShardBatchResponse resp;
  Status s = client_->Batch(req, &resp, last);
  if (s.ok() && resp.results_size() != static_cast<int>(batch.size())) {
    s = Status::Internal("the storage node answered " + std::to_string(resp.results_size()) +
                         " results for " + std::to_string(batch.size()) + " requests");
  }

  lock.lock();
  --in_flight_;
  for (size_t i = 0; i < batch.size(); ++i) {
    Pending* p = batch[i];
    p->status = s;
    if (s.ok()) p->result = std::move(*resp.mutable_results(static_cast<int>(i)));
    p->done = true;
    p->cv.notify_one();
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();
}

uint64_t NodeBatcher::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

uint64_t NodeBatcher::items() const {
  std::lock_guard lock(mu_);
  return items_;
}

}  // namespace gojodb::gateway
