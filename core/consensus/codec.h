// A compact, versioned binary encoding of the core's data, for the durable log and
// the transport. Every top-level encoding starts with a format version byte
// (kCodecVersion); integers are LEB128 varints, strings and lists are length-prefixed.
// The exact layout is documented in docs/architecture/consensus.md. Decoders reject
// unknown versions, out-of-range enums, truncation and trailing bytes with
// Status::Corruption, and never read beyond the input.
#pragma once

#include <string>
#include <string_view>

#include "core/consensus/messages.h"
#include "internal/status.h"

namespace gojodb::consensus {

inline constexpr uint8_t kCodecVersion = 1;

std::string EncodeEntry(const Entry& e);
Result<Entry> DecodeEntry(std::string_view in);

std::string EncodeHardState(const HardState& hs);
Result<HardState> DecodeHardState(std::string_view in);

std::string EncodeConfState(const ConfState& cs);
Result<ConfState> DecodeConfState(std::string_view in);

std::string EncodeSnapshotMetadata(const SnapshotMetadata& md);
Result<SnapshotMetadata> DecodeSnapshotMetadata(std::string_view in);

std::string EncodeConfChange(const ConfChange& cc);
Result<ConfChange> DecodeConfChange(std::string_view in);

// A message including its entries and snapshot (metadata and data).
std::string EncodeMessage(const Message& m);
Result<Message> DecodeMessage(std::string_view in);

}  // namespace gojodb::consensus
