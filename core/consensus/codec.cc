#include "core/consensus/codec.h"

namespace gojodb::consensus {

namespace {

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void Bytes(std::string_view s) {
    Varint(s.size());
    out_.append(s.data(), s.size());
  }
  void Ids(const std::vector<NodeId>& ids) {
    Varint(ids.size());
    for (NodeId id : ids) Varint(id.value());
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool U8(uint8_t* v) {
    if (pos_ >= in_.size()) return false;
    *v = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  bool Varint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!U8(&b)) return false;
      if (shift == 63 && b > 1) return false;  // overflows 64 bits
      r |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        *v = r;
        return true;
      }
    }
    return false;
  }
  bool Bytes(std::string* s) {
    uint64_t n;
    if (!Varint(&n) || n > in_.size() - pos_) return false;
    s->assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool Ids(std::vector<NodeId>* ids) {
    uint64_t n;
    // Each id takes at least one byte: bound the count before reserving.
    if (!Varint(&n) || n > in_.size() - pos_) return false;
    ids->clear();
    ids->reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t v;
      if (!Varint(&v)) return false;
      ids->push_back(NodeId(v));
    }
    return true;
  }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

Status Corrupt(const char* what) {
  return Status::Corruption(std::string("consensus codec: bad ") + what);
}

// ---- bodies (no version byte) ----

void PutEntry(Writer* w, const Entry& e) {
  w->Varint(e.term.value());
  w->Varint(e.index.value());
  w->U8(static_cast<uint8_t>(e.type));
  w->Bytes(e.data);
}

bool GetEntry(Reader* r, Entry* e) {
  uint64_t term, index;
  uint8_t type;
  if (!r->Varint(&term) || !r->Varint(&index) || !r->U8(&type) || type > 1 || !r->Bytes(&e->data))
    return false;
  e->term = Term(term);
  e->index = LogIndex(index);
  e->type = static_cast<EntryType>(type);
  return true;
}

void PutConfState(Writer* w, const ConfState& cs) {
  w->Ids(cs.voters);
  w->Ids(cs.learners);
  w->Ids(cs.voters_outgoing);
  w->Ids(cs.learners_next);
  w->U8(cs.auto_leave ? 1 : 0);
}

bool GetConfState(Reader* r, ConfState* cs) {
  uint8_t al;
  if (!r->Ids(&cs->voters) || !r->Ids(&cs->learners) || !r->Ids(&cs->voters_outgoing) ||
      !r->Ids(&cs->learners_next) || !r->U8(&al) || al > 1) {
    return false;
  }
  cs->auto_leave = al == 1;
  return true;
}

void PutSnapshotMetadata(Writer* w, const SnapshotMetadata& md) {
  PutConfState(w, md.conf_state);
  w->Varint(md.index.value());
  w->Varint(md.term.value());
}

bool GetSnapshotMetadata(Reader* r, SnapshotMetadata* md) {
  uint64_t index, term;
  if (!GetConfState(r, &md->conf_state) || !r->Varint(&index) || !r->Varint(&term)) return false;
  md->index = LogIndex(index);
  md->term = Term(term);
  return true;
}

bool CheckVersion(Reader* r) {
  uint8_t v;
  return r->U8(&v) && v == kCodecVersion;
}

template <typename T, typename GetFn>
Result<T> DecodeWith(std::string_view in, const char* what, GetFn get) {
  Reader r(in);
  if (!CheckVersion(&r)) return Corrupt("version");
  T out{};
  if (!get(&r, &out)) return Corrupt(what);
  if (r.remaining() != 0) return Corrupt("trailing bytes");
  return out;
}

}  // namespace

std::string EncodeEntry(const Entry& e) {
  Writer w;
  w.U8(kCodecVersion);
  PutEntry(&w, e);
  return w.Take();
}

Result<Entry> DecodeEntry(std::string_view in) { return DecodeWith<Entry>(in, "entry", GetEntry); }

std::string EncodeHardState(const HardState& hs) {
  Writer w;
  w.U8(kCodecVersion);
  w.Varint(hs.term.value());
  w.Varint(hs.vote.value());
  w.Varint(hs.commit.value());
  return w.Take();
}

Result<HardState> DecodeHardState(std::string_view in) {
  return DecodeWith<HardState>(in, "hard state", [](Reader* r, HardState* hs) {
    uint64_t t, v, c;
    if (!r->Varint(&t) || !r->Varint(&v) || !r->Varint(&c)) return false;
    *hs = HardState{Term(t), NodeId(v), LogIndex(c)};
    return true;
  });
}

std::string EncodeConfState(const ConfState& cs) {
  Writer w;
  w.U8(kCodecVersion);
  PutConfState(&w, cs);
  return w.Take();
}

Result<ConfState> DecodeConfState(std::string_view in) {
  return DecodeWith<ConfState>(in, "conf state", GetConfState);
}

std::string EncodeSnapshotMetadata(const SnapshotMetadata& md) {
  Writer w;
  w.U8(kCodecVersion);
  PutSnapshotMetadata(&w, md);
  return w.Take();
}

Result<SnapshotMetadata> DecodeSnapshotMetadata(std::string_view in) {
  return DecodeWith<SnapshotMetadata>(in, "snapshot metadata", GetSnapshotMetadata);
}

std::string EncodeConfChange(const ConfChange& cc) {
  Writer w;
  w.U8(kCodecVersion);
  w.U8(static_cast<uint8_t>(cc.transition));
  w.Varint(cc.changes.size());
  for (const ConfChangeSingle& c : cc.changes) {
    w.U8(static_cast<uint8_t>(c.type));
    w.Varint(c.node_id.value());
  }
  w.Bytes(cc.context);
  return w.Take();
}

Result<ConfChange> DecodeConfChange(std::string_view in) {
  return DecodeWith<ConfChange>(in, "conf change", [](Reader* r, ConfChange* cc) {
    uint8_t tr;
    uint64_t n;
    if (!r->U8(&tr) || tr > 2 || !r->Varint(&n) || n > r->remaining()) return false;
    cc->transition = static_cast<ConfChangeTransition>(tr);
    for (uint64_t i = 0; i < n; ++i) {
      uint8_t type;
      uint64_t id;
      if (!r->U8(&type) || type > 2 || !r->Varint(&id)) return false;
      cc->changes.push_back(ConfChangeSingle{static_cast<ConfChangeType>(type), NodeId(id)});
    }
    return r->Bytes(&cc->context);
  });
}

std::string EncodeMessage(const Message& m) {
  Writer w;
  w.U8(kCodecVersion);
  w.U8(static_cast<uint8_t>(m.type));
  w.Varint(m.to.value());
  w.Varint(m.from.value());
  w.Varint(m.term.value());
  w.Varint(m.log_term.value());
  w.Varint(m.index.value());
  w.Varint(m.commit.value());
  w.U8(m.reject ? 1 : 0);
  w.Varint(m.reject_hint.value());
  w.Bytes(m.context);
  w.Varint(m.entries.size());
  for (const Entry& e : m.entries) PutEntry(&w, e);
  w.U8(m.snapshot ? 1 : 0);
  if (m.snapshot) {
    PutSnapshotMetadata(&w, m.snapshot->metadata);
    w.Bytes(m.snapshot->data);
  }
  return w.Take();
}

Result<Message> DecodeMessage(std::string_view in) {
  return DecodeWith<Message>(in, "message", [](Reader* r, Message* m) {
    uint8_t type, reject, has_snap;
    uint64_t to, from, term, log_term, index, commit, hint, n;
    if (!r->U8(&type) || type >= kNumMessageTypes || !r->Varint(&to) || !r->Varint(&from) ||
        !r->Varint(&term) || !r->Varint(&log_term) || !r->Varint(&index) || !r->Varint(&commit) ||
        !r->U8(&reject) || reject > 1 || !r->Varint(&hint) || !r->Bytes(&m->context) ||
        !r->Varint(&n) || n > r->remaining()) {
      return false;
    }
    m->type = static_cast<MessageType>(type);
    m->to = NodeId(to);
    m->from = NodeId(from);
    m->term = Term(term);
    m->log_term = Term(log_term);
    m->index = LogIndex(index);
    m->commit = LogIndex(commit);
    m->reject = reject == 1;
    m->reject_hint = LogIndex(hint);
    m->entries.resize(n);
    for (uint64_t i = 0; i < n; ++i) {
      if (!GetEntry(r, &m->entries[i])) return false;
    }
    if (!r->U8(&has_snap) || has_snap > 1) return false;
    if (has_snap == 1) {
      Snapshot s;
      if (!GetSnapshotMetadata(r, &s.metadata) || !r->Bytes(&s.data)) return false;
      m->snapshot = std::move(s);
    }
    return true;
  });
}

}  // namespace gojodb::consensus
