#include "cmd/cli/format.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace gojodb::cli {
namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // no overlong forms
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  }
  return len;
}

bool IsC1Control(std::string_view s, size_t i, size_t len) {
  return len == 2 && static_cast<unsigned char>(s[i]) == 0xC2 &&
         static_cast<unsigned char>(s[i + 1]) < 0xA0;
}

void AppendHexEscape(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\x";
  out += kHex[c >> 4];
  out += kHex[c & 0xF];
}

}  // namespace

bool IsPrintableText(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size();) {
    size_t len = Utf8SequenceLength(bytes, i);
    if (len == 0 || IsC1Control(bytes, i, len)) return false;
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (len == 1 && (c < 0x20 || c == 0x7F) && c != '\n' && c != '\t') return false;
    i += len;
  }
  return true;
}

std::string EscapeForDisplay(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    size_t len = Utf8SequenceLength(bytes, i);
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (len == 0 || IsC1Control(bytes, i, len)) {
      AppendHexEscape(out, c);  // one bad byte at a time; resync on the next
      i += 1;
      continue;
    }
    if (len == 1) {
      switch (c) {
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20 || c == 0x7F) {
            AppendHexEscape(out, c);
          } else {
            out += static_cast<char>(c);
          }
      }
    } else {
      out.append(bytes.substr(i, len));
    }
    i += len;
  }
  return out;
}

size_t DisplayWidth(std::string_view text) {
  size_t width = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++width;
  }
  return width;
}

std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows) {
  const size_t ncols = header.size();
  std::vector<size_t> widths(ncols, 0);
  for (size_t c = 0; c < ncols; ++c) widths[c] = DisplayWidth(header[c]);
  for (const auto& row : rows) {
    for (size_t c = 0; c < ncols && c < row.size(); ++c) {
      widths[c] = std::max(widths[c], DisplayWidth(row[c]));
    }
  }
  std::string out;
  auto append_line = [&](const std::vector<std::string>& cells) {
    // Pad every cell up to the last non-empty one; never leave trailing blanks.
    size_t used = std::min(cells.size(), ncols);
    while (used > 0 && cells[used - 1].empty()) --used;
    for (size_t c = 0; c < used; ++c) {
      if (c > 0) out += "  ";
      out += cells[c];
      if (c + 1 < used) out.append(widths[c] - DisplayWidth(cells[c]), ' ');
    }
    out += '\n';
  };
  append_line(header);
  for (const auto& row : rows) append_line(row);
  return out;
}

std::string DumpJson(const nlohmann::json& doc) {
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace gojodb::cli
