#include "cmd/cli/shell_lexer.h"

#include "internal/encoding.h"

namespace gojodb::cli {
namespace {

std::string At(size_t pos) { return " at column " + std::to_string(pos + 1); }

// Decodes the escape whose backslash is at line[i]; advances i past it.
Status DecodeEscape(std::string_view line, size_t& i, bool in_quotes, std::string& word) {
  const size_t start = i;
  if (i + 1 >= line.size()) {
    return Status::InvalidArgument("trailing backslash" + At(start));
  }
  const char c = line[i + 1];
  i += 2;
  switch (c) {
    case '\\':
      word += '\\';
      return Status::OK();
    case '"':
      word += '"';
      return Status::OK();
    case '\'':
      word += '\'';
      return Status::OK();
    case 'n':
      word += '\n';
      return Status::OK();
    case 'r':
      word += '\r';
      return Status::OK();
    case 't':
      word += '\t';
      return Status::OK();
    case '0':
      word += '\0';
      return Status::OK();
    case ' ':
      if (!in_quotes) {
        word += ' ';
        return Status::OK();
      }
      break;
    case 'x': {
      int hi = i < line.size() ? HexDigitValue(line[i]) : -1;
      int lo = i + 1 < line.size() ? HexDigitValue(line[i + 1]) : -1;
      if (hi < 0 || lo < 0) {
        return Status::InvalidArgument("\\x needs two hex digits" + At(start));
      }
      word += static_cast<char>(hi * 16 + lo);
      i += 2;
      return Status::OK();
    }
    default:
      break;
  }
  return Status::InvalidArgument(std::string("unknown escape '\\") + c + "'" + At(start));
}

}  // namespace

Result<std::vector<std::string>> SplitShellLine(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // a word has started (possibly empty, as with "")
  size_t i = 0;
  while (i < line.size()) {
    const char c = line[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (in_word) {
        words.push_back(std::move(word));
        word.clear();
        in_word = false;
      }
      ++i;
      continue;
    }
    if (c == '#' && !in_word && words.empty()) return words;  // comment line
    in_word = true;
    if (c == '\\') {
      RETURN_IF_ERROR(DecodeEscape(line, i, /*in_quotes=*/false, word));
    } else if (c == '\'') {
      const size_t close = line.find('\'', i + 1);
      if (close == std::string_view::npos) {
        return Status::InvalidArgument("unterminated single quote" + At(i));
      }
      word.append(line.substr(i + 1, close - i - 1));
      i = close + 1;
    } else if (c == '"') {
      const size_t open = i++;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          closed = true;
          ++i;
          break;
        }
        if (line[i] == '\\') {
          RETURN_IF_ERROR(DecodeEscape(line, i, /*in_quotes=*/true, word));
        } else {
          word += line[i++];
        }
      }
      if (!closed) return Status::InvalidArgument("unterminated double quote" + At(open));
    } else {
      word += c;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace gojodb::cli
