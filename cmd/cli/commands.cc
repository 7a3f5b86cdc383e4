#include "cmd/cli/commands.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <functional>
#include <iostream>
#include <optional>

#include "cmd/cli/command_args.h"

namespace gojodb::cli {
namespace {

// "collections create" for the innermost subcommand chosen on the line.
std::string CommandPath(const CLI::App& app) {
  std::string path;
  const CLI::App* cur = &app;
  while (true) {
    auto subs = cur->get_subcommands();
    if (subs.empty()) break;
    cur = subs.front();
    if (!path.empty()) path += " ";
    path += cur->get_name();
  }
  return path;
}

// "unknown command 'collections frob'" when the line names no known command at a level
// that needs one.
std::optional<std::string> UnknownCommand(const CLI::App& app) {
  const CLI::App* cur = &app;
  std::string path;
  while (!cur->get_subcommands().empty()) {
    cur = cur->get_subcommands().front();
    path += cur->get_name() + " ";
  }
  if (cur->get_subcommands({}).empty()) return std::nullopt;  // a leaf command
  for (const std::string& arg : app.remaining(/*recurse=*/true)) {
    if (!arg.empty() && arg[0] != '-') {
      return std::string("unknown command '").append(path).append(arg).append("'");
    }
  }
  std::string names;
  for (const CLI::App* sub : cur->get_subcommands({})) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
  }
  return "missing command: " + path + "{" + names + "}";
}

// Decimal integers only: CLI11's own checks would let "-1" wrap around.
CLI::Validator UnsignedValidator(bool positive) {
  return CLI::Validator(
      [positive](std::string& s) -> std::string {
        uint64_t v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos ||
            ec != std::errc() || end != s.data() + s.size() || (positive && v == 0)) {
          return std::string("must be a ") + (positive ? "positive" : "non-negative") +
                 " 64-bit integer, got '" + s + "'";
        }
        return "";
      },
      positive ? "N>0" : "N");
}

}  // namespace

std::string DefaultAddr(const char* env_value) {
  if (env_value != nullptr && env_value[0] != '\0') return env_value;
  return "127.0.0.1:7001";
}

Cli::Cli(GlobalOptions defaults, Connector connect, Io io, std::string version)
    : defaults_(std::move(defaults)),
      connect_(std::move(connect)),
      io_(io),
      version_(std::move(version)) {}

int Cli::Run(const std::vector<std::string>& args) { return Dispatch(args, false); }

int Cli::RunInShell(const std::vector<std::string>& args) { return Dispatch(args, true); }

Result<Backend*> Cli::BackendFor(const std::string& addr, int timeout_ms) {
  auto key = std::make_pair(addr, timeout_ms);
  auto it = backends_.find(key);
  if (it == backends_.end()) {
    ASSIGN_OR_RETURN(auto backend, connect_(addr, timeout_ms));
    it = backends_.emplace(key, std::move(backend)).first;
  }
  return it->second.get();
}

void Cli::Print(const std::string& text) {
  *io_.out << text;
  io_.out->flush();
}

int Cli::Usage(const std::string& command, const std::string& message) {
  std::string hint;
  if (in_shell_) {
    hint = command.empty() ? " (type 'help')" : " (type 'help " + command + "')";
  } else {
    hint = command.empty() ? " (run 'gojodb --help')" : " (run 'gojodb " + command + " --help')";
  }
  *io_.err << UsageErrorLine(message + hint) << std::endl;
  return static_cast<int>(ExitCode::kUsage);
}

int Cli::Fail(const Status& status) {
  if (status.code() == StatusCode::kUnavailable || status.code() == StatusCode::kDeadlineExceeded) {
    // Say which server could not be reached.
    *io_.err << ErrorLine(status.WithContext("server " + addr_)) << std::endl;
    return static_cast<int>(ExitCodeFor(status));
  }
  *io_.err << ErrorLine(status) << std::endl;
  return static_cast<int>(ExitCodeFor(status));
}

int Cli::Dispatch(const std::vector<std::string>& args, bool in_shell) {
  in_shell_ = in_shell;
  Args a;
  a.g = defaults_;
  a.output = defaults_.output == OutputMode::kJson ? "json" : "table";

  CLI::App app{"GojoDB command-line client", in_shell ? "" : "gojodb"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags may follow the command
  app.add_option("--addr", a.g.addr,
                 "gRPC address host:port of a gateway or standalone server "
                 "(default: $GOJODB_ADDR, else 127.0.0.1:7001)");
  app.add_option("-o,--output", a.output, "Output format: table (default) or json")
      ->check(CLI::IsMember({"table", "json"}));
  app.add_option("-c,--collection", a.g.collection, "Collection (default: default)");
  app.add_option("--timeout-ms", a.g.timeout_ms, "Deadline of each request in milliseconds")
      ->check(UnsignedValidator(true));

  std::function<int()> action;
  auto on = [&](CLI::App* sub, int (Cli::*method)(const Args&)) {
    sub->callback([this, &action, &a, method] {
      action = [this, &a, method] { return (this->*method)(a); };
    });
  };
  auto track = [](CLI::Option* opt, bool* flag) {
    opt->each([flag](const std::string&) { *flag = true; });
  };

  auto* put = app.add_subcommand("put", "Store VALUE under KEY");
  put->add_option("KEY", a.key, "Key")->required();
  put->add_option("VALUE", a.value, "Value; - reads it from stdin")->required();
  track(put->add_option("--if-version", a.if_version,
                        "Write only if the key's current version is V (0: must not exist)")
            ->check(UnsignedValidator(false)),
        &a.has_if_version);
  put->add_option("--request-id", a.request_id, "Client request id: a retry applies once");
  on(put, &Cli::DoPut);

  auto* get = app.add_subcommand("get", "Print the value stored under KEY");
  get->add_option("KEY", a.key, "Key")->required();
  track(get->add_option("--consistency", a.consistency, "linearizable (default), snapshot or stale")
            ->check(CLI::IsMember({"linearizable", "snapshot", "stale"})),
        &a.has_consistency);
  track(get->add_option("--at", a.at, "Read at timestamp TS (a snapshot read)")
            ->check(UnsignedValidator(false)),
        &a.has_at);
  on(get, &Cli::DoGet);

  auto* del = app.add_subcommand("delete", "Delete KEY");
  del->add_option("KEY", a.key, "Key")->required();
  track(
      del->add_option("--if-version", a.if_version, "Delete only if the key's current version is V")
          ->check(UnsignedValidator(false)),
      &a.has_if_version);
  del->add_option("--request-id", a.request_id, "Client request id: a retry applies once");
  on(del, &Cli::DoDelete);

  auto* scan = app.add_subcommand("scan", "List keys in [START, END) in key order");
  scan->add_option("START", a.start, "First key (inclusive)");
  scan->add_option("END", a.end, "End key (exclusive)");
  scan->add_option("--prefix", a.prefix, "Only keys with this prefix");
  track(scan->add_option("--limit", a.limit,
                         "At most N rows (default: one page of the server's default size)")
            ->check(UnsignedValidator(true)),
        &a.has_limit);
  scan->add_flag("--reverse", a.reverse, "Descending key order");
  scan->add_flag("--all", a.all, "Read every page, not only the first");
  track(
      scan->add_option("--consistency", a.consistency, "linearizable (default), snapshot or stale")
          ->check(CLI::IsMember({"linearizable", "snapshot", "stale"})),
      &a.has_consistency);
  track(scan->add_option("--at", a.at, "Read at timestamp TS (a snapshot read)")
            ->check(UnsignedValidator(false)),
        &a.has_at);
  on(scan, &Cli::DoScan);

  // Documents.
  auto read_point = [&](CLI::App* sub) {
    track(sub->add_option("--consistency", a.consistency, "linearizable (default) or snapshot")
              ->check(CLI::IsMember({"linearizable", "snapshot"})),
          &a.has_consistency);
    track(sub->add_option("--at", a.at, "Read at timestamp TS (a snapshot read)")
              ->check(UnsignedValidator(false)),
          &a.has_at);
  };
  auto file_format = [&](CLI::App* sub) {
    sub->add_option("--format", a.format, "ndjson or csv (default: by the file's extension)")
        ->check(CLI::IsMember({"ndjson", "csv"}));
    sub->add_option("--key-field", a.key_field,
                    "Field that holds each document's key (default _id)");
  };
  auto* query = app.add_subcommand("query", "Find documents that match FILTER");
  query->add_option("FILTER", a.filter, "Filter as JSON, e.g. '{\"age\": {\"gte\": 30}}'");
  query->add_option("--sort", a.sort, "Sort by FIELD or FIELD:desc (repeatable)");
  query->add_option("--fields", a.fields, "Only these fields, comma-separated (a projection)");
  track(query->add_option("--limit", a.limit, "At most N documents (following pages)")
            ->check(UnsignedValidator(true)),
        &a.has_limit);
  query->add_option("--cursor", a.cursor, "Continue where the page that gave this cursor ended");
  query->add_flag("--all", a.all, "Read every page, not only the first");
  query->add_flag("--explain", a.explain, "Also show the plan: the index or range it reads");
  read_point(query);
  on(query, &Cli::DoQuery);

  auto* agg = app.add_subcommand("aggregate", "Group documents and compute aggregates");
  agg->add_option("--filter", a.filter, "Only documents that match this JSON filter");
  agg->add_option("--group-by", a.group_by, "Group by these fields, comma-separated");
  agg->add_option("--agg", a.aggs,
                  "NAME=OP[:FIELD], OP one of count, sum, avg, min, max, count_distinct "
                  "(repeatable; count without FIELD counts documents)")
      ->required();
  agg->add_flag("--explain", a.explain, "Also show the plan");
  read_point(agg);
  on(agg, &Cli::DoAggregate);

  auto* imp = app.add_subcommand("import", "Load documents from an NDJSON or CSV file");
  imp->add_option("FILE", a.file, "File to read; - reads stdin")->required();
  file_format(imp);
  imp->add_option("--ingest-id", a.ingest_id,
                  "Resumable load: a rerun with the same id skips the lines already in");
  imp->add_option("--batch", a.batch, "Documents per message sent (default 1000)")
      ->check(UnsignedValidator(true));
  imp->add_flag("--csv-strings", a.strings_only, "CSV: every field is a string (no typing)");
  on(imp, &Cli::DoImport);

  auto* exp = app.add_subcommand("export", "Write documents to an NDJSON or CSV file");
  exp->add_option("FILE", a.file, "File to write; - writes stdout")->required();
  file_format(exp);
  exp->add_option("--filter", a.filter, "Only documents that match this JSON filter");
  exp->add_option("--fields", a.fields,
                  "Only these fields, comma-separated (CSV: the columns; default: every "
                  "top-level field found)");
  read_point(exp);
  on(exp, &Cli::DoExport);

  auto* colls = app.add_subcommand("collections", "Create, list, describe and drop collections");
  colls->require_subcommand(1);
  auto* ccreate = colls->add_subcommand("create", "Create collection NAME");
  ccreate->add_option("NAME", a.name, "Collection name")->required();
  ccreate->add_option("--schema", a.schema, "JSON schema of the collection's documents");
  ccreate->add_option("--index", a.indexes,
                      "Secondary index NAME:FIELD[,FIELD...][:unique] (repeatable)");
  on(ccreate, &Cli::DoCollectionCreate);
  auto* clist = colls->add_subcommand("list", "List collections");
  on(clist, &Cli::DoCollectionList);
  auto* cdesc = colls->add_subcommand("describe", "Show collection NAME");
  cdesc->add_option("NAME", a.name, "Collection name")->required();
  on(cdesc, &Cli::DoCollectionDescribe);
  auto* cidx = colls->add_subcommand(
      "add-index",
      "Add index SPEC (NAME:FIELD[,FIELD...][:unique]) to collection NAME, built "
      "online while it takes writes");
  cidx->add_option("NAME", a.name, "Collection name")->required();
  cidx->add_option("SPEC", a.index_spec, "NAME:FIELD[,FIELD...][:unique]")->required();
  cidx->add_option("--wait-ms", a.wait_ms,
                   "Wait at most this long for the build (default 600000); it goes on after");
  on(cidx, &Cli::DoIndexAdd);
  auto* cdropi = colls->add_subcommand(
      "drop-index", "Drop index INDEX of collection NAME (waits out the schema lease)");
  cdropi->add_option("NAME", a.name, "Collection name")->required();
  cdropi->add_option("INDEX", a.index_name, "Index name")->required();
  on(cdropi, &Cli::DoIndexDrop);
  auto* cdrop = colls->add_subcommand("drop", "Drop collection NAME and all its keys");
  cdrop->add_option("NAME", a.name, "Collection name")->required();
  on(cdrop, &Cli::DoCollectionDrop);

  auto* cluster = app.add_subcommand("cluster", "Cluster administration");
  cluster->require_subcommand(1);
  on(cluster->add_subcommand("status", "Show controllers, storage nodes and shards"),
     &Cli::DoClusterStatus);

  // Cluster administration: the controller's operator API.
  auto* node = app.add_subcommand("node", "List and decommission storage nodes (controller)");
  node->require_subcommand(1);
  on(node->add_subcommand("list", "List storage nodes with their state and load"),
     &Cli::DoNodeList);
  auto* ndecom = node->add_subcommand("decommission", "Move every replica off node ID");
  ndecom->add_option("ID", a.id, "Node id")->required()->check(UnsignedValidator(true));
  on(ndecom, &Cli::DoNodeDecommission);

  auto* shard = app.add_subcommand("shard", "Show the shard map (controller)");
  shard->require_subcommand(1);
  on(shard->add_subcommand("list", "List shards: key ranges, replicas, leaders, epochs"),
     &Cli::DoShardList);

  auto* ctrl = app.add_subcommand("controller", "Change the controller group's members");
  ctrl->require_subcommand(1);
  auto* cadd = ctrl->add_subcommand("add", "Add controller ID serving gRPC at ADDR");
  cadd->add_option("ID", a.id, "Controller id")->required()->check(UnsignedValidator(true));
  cadd->add_option("ADDR", a.member_addr, "Its gRPC address host:port")->required();
  on(cadd, &Cli::DoControllerAdd);
  auto* cremove = ctrl->add_subcommand("remove", "Remove controller ID from the group");
  cremove->add_option("ID", a.id, "Controller id")->required()->check(UnsignedValidator(true));
  on(cremove, &Cli::DoControllerRemove);

  auto* settings = app.add_subcommand("settings", "Show and change cluster settings (controller)");
  settings->require_subcommand(1);
  on(settings->add_subcommand("get", "Show the cluster settings"), &Cli::DoSettingsGet);
  auto* sset = settings->add_subcommand("set", "Change settings: NAME=VALUE, VALUE an integer");
  sset->add_option("SETTING", a.settings, "NAME=VALUE (one or more)")->required();
  on(sset, &Cli::DoSettingsSet);

  auto* tso = app.add_subcommand("tso", "Allocate timestamps from the timestamp oracle");
  tso->add_option("--count", a.count, "How many timestamps, 1..65536 (default: 1)")
      ->check(UnsignedValidator(true));
  on(tso, &Cli::DoTso);

  if (!in_shell) {
    on(app.add_subcommand("shell", "Interactive shell with line editing and history"),
       &Cli::DoShell);
  }
  auto* version = app.add_subcommand("version", "Print the client's and the server's version");
  version->add_flag("--client", a.client_only, "Only the client's version; no request");
  on(version, &Cli::DoVersion);

  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 wants it reversed
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    Print(app.help());
    return static_cast<int>(ExitCode::kOk);
  } catch (const CLI::CallForAllHelp&) {
    Print(app.help("", CLI::AppFormatMode::All));
    return static_cast<int>(ExitCode::kOk);
  } catch (const CLI::ParseError& e) {
    return Usage(CommandPath(app), UnknownCommand(app).value_or(e.what()));
  }
  if (!action) return Usage(CommandPath(app), "no command given");
  a.g.output = a.output == "json" ? OutputMode::kJson : OutputMode::kTable;
  if (a.g.addr.empty()) return Usage("", "--addr must not be empty");
  addr_ = a.g.addr;
  return action();
}

}  // namespace gojodb::cli
