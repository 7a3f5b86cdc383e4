// Turns command results into the text the CLI prints, in table or JSON mode.
//
// Table mode is for people: values and keys are escaped (format.h) so that any bytes
// show on one line. JSON mode prints one compact JSON document per command, with keys
// and values under API.md's rules (key / key_base64, value / value_base64). Every
// function returns complete lines, each ending in '\n'.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/kv/ingest_session.h"
#include "core/kv/kv_service.h"
#include "gojodb/v1/kv.pb.h"

namespace gojodb::cli {

enum class OutputMode { kTable, kJson };

// Rows of a scan or query: as JSON items ({"key"|"key_base64", "value"|"value_base64",
// "version"}) and as table rows (key, version, value; escaped).
nlohmann::json ItemsJson(const std::vector<kv::KeyValue>& items);
std::vector<std::vector<std::string>> ItemRows(const std::vector<kv::KeyValue>& items);

std::string RenderPut(OutputMode mode, const std::string& key, const kv::WriteResult& r);
std::string RenderDelete(OutputMode mode, const std::string& key, const kv::WriteResult& r);

// REQUIRES: r.found. Table mode writes the value's bytes as they are, then '\n'; with
// escape_unprintable, a value that is not printable text (format.h IsPrintableText) is
// escaped instead, so that it cannot garble a terminal.
std::string RenderGet(OutputMode mode, const std::string& key, const kv::GetResult& r,
                      bool escape_unprintable);

// KEY / VERSION / VALUE table and a "(N rows)" footer that says where more rows start.
std::string RenderScan(OutputMode mode, const kv::ScanResult& r, bool reverse);

// Documents (render_docs.cc). A query page: KEY / VERSION / DOCUMENT and a footer with
// the cursor; the plan first when there is one.
std::string RenderQuery(OutputMode mode, const kv::QueryResult& r);
// One row per group: the group_by fields, then the aggregates by name.
std::string RenderAggregate(OutputMode mode, const kv::AggregateResult& r,
                            const std::vector<std::string>& group_by,
                            const std::vector<std::string>& names);
// What an import did: counts and the first refused lines (at most `max_errors` listed in
// table mode; JSON lists what the server listed).
std::string RenderImport(OutputMode mode, const std::string& source, const kv::IngestSummary& s,
                         size_t max_errors);

std::string RenderCollectionList(OutputMode mode, const std::vector<kv::CollectionInfo>& list);
// describe, and the answer to create.
std::string RenderCollection(OutputMode mode, const kv::CollectionInfo& info);
std::string RenderDropped(OutputMode mode, const std::string& name);

std::string RenderClusterStatus(OutputMode mode, const v1::ClusterStatusResponse& s);

// server_version empty: the server was not asked (version --client) or did not answer.
std::string RenderVersion(OutputMode mode, const std::string& client_version,
                          const std::string& server_version, const std::string& server_mode);

}  // namespace gojodb::cli
