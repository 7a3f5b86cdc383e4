// Cli::Args: what one command line sets, shared by the parser (commands.cc) and the
// command implementations (command_handlers.cc). Private to cmd/cli.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cmd/cli/commands.h"

namespace gojodb::cli {

// Everything one command line can set.
struct Cli::Args {
  GlobalOptions g;
  std::string output;
  std::string key, value, start, end, prefix, name, request_id, schema;
  std::string consistency = "linearizable";
  std::vector<std::string> indexes;
  std::string index_spec;  // collections add-index
  std::string index_name;  // collections drop-index
  uint64_t wait_ms = 600000;
  std::vector<std::string> settings;  // settings set NAME=VALUE...
  std::string member_addr;            // controller add ID ADDR
  uint64_t id = 0;                    // node or controller id
  uint64_t count = 1;                 // tso --count
  uint64_t if_version = 0, at = 0;
  size_t limit = 0;
  bool has_if_version = false, has_at = false, has_consistency = false, has_limit = false;
  bool reverse = false, all = false, client_only = false;
  // Documents: query, aggregate, import, export.
  std::string filter, fields, cursor, group_by, file, format, ingest_id;
  std::string key_field = "_id";
  std::vector<std::string> sort, aggs;
  size_t batch = 1000;
  bool explain = false, strings_only = false;
};

}  // namespace gojodb::cli
