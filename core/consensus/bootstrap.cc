#include "core/consensus/bootstrap.h"

#include "core/consensus/codec.h"

namespace gojodb::consensus {

Status Bootstrap(MemoryStorage* storage, const std::vector<NodeId>& voters) {
  if (voters.empty())
    return Status::InvalidArgument("consensus: bootstrap needs at least one voter");
  ASSIGN_OR_RETURN(LogIndex last, storage->LastIndex());
  ASSIGN_OR_RETURN(InitialState st, storage->GetInitialState());
  if (last != LogIndex{} || !st.hard_state.empty()) {
    return Status::FailedPrecondition("consensus: can only bootstrap an empty storage");
  }
  std::vector<Entry> ents;
  ConfState cs;
  for (NodeId id : voters) {
    ConfChange cc;
    cc.changes.push_back(ConfChangeSingle{ConfChangeType::kAddNode, id});
    ents.push_back(
        Entry{Term(1), LogIndex(ents.size() + 1), EntryType::kConfChange, EncodeConfChange(cc)});
    cs.voters.push_back(id);
  }
  storage->Bootstrap(cs);
  RETURN_IF_ERROR(storage->Append(ents));
  storage->SetHardState(HardState{Term(1), kNoNode, LogIndex(ents.size())});
  return Status::OK();
}

}  // namespace gojodb::consensus
