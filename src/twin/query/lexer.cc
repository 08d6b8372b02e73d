#include "twin/query/lexer.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>

namespace doppel::twin::query::internal {
namespace {

bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;  // non-ASCII letters in property names
}

bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(std::string_view text) : s_(text) {}

  core::Result<std::vector<Token>> Run() {
    std::vector<Token> out;
    for (;;) {
      SkipSpace();
      Token t;
      t.pos = pos_;
      if (i_ >= s_.size()) {
        t.kind = TokenKind::kEnd;
        out.push_back(std::move(t));
        return out;
      }
      char c = s_[i_];
      if (IsIdentStart(c)) {
        std::size_t start = i_;
        while (i_ < s_.size() && IsIdentChar(s_[i_])) Advance();
        t.kind = TokenKind::kIdent;
        t.text = std::string(s_.substr(start, i_ - start));
      } else if (IsDigit(c)) {
        auto st = Number(&t);
        if (!st.ok()) return st;
      } else if (c == '\'' || c == '"') {
        auto st = String(&t);
        if (!st.ok()) return st;
      } else if (c == '[' && Peek(1) == '[') {
        // [[name]] escapes a reserved word as an identifier.
        Advance();
        Advance();
        std::size_t start = i_;
        while (i_ < s_.size() && !(s_[i_] == ']' && Peek(1) == ']')) {
          if (s_[i_] == '\n') break;
          Advance();
        }
        if (i_ >= s_.size() || s_[i_] != ']') {
          return Error(t.pos, "unterminated escaped name: expected ']]'");
        }
        t.kind = TokenKind::kQuotedIdent;
        t.text = std::string(s_.substr(start, i_ - start));
        Advance();
        Advance();
        if (t.text.empty()) return Error(t.pos, "empty escaped name '[[]]'");
      } else {
        auto st = Punct(&t);
        if (!st.ok()) return st;
      }
      out.push_back(std::move(t));
    }
  }

 private:
  char Peek(std::size_t ahead) const { return i_ + ahead < s_.size() ? s_[i_ + ahead] : '\0'; }

  void Advance() {
    char c = s_[i_++];
    if (c == '\n') {
      ++pos_.line;
      pos_.column = 1;
    } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      ++pos_.column;  // count code points, not bytes: continuation bytes do not move
    }
  }

  void SkipSpace() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
      Advance();
    }
  }

  static core::Status Error(const Pos& pos, const std::string& what) {
    return core::Status("QUERY_SYNTAX", FormatPos(pos) + ": " + what);
  }

  core::Status Number(Token* t) {
    std::size_t start = i_;
    bool is_double = false;
    while (i_ < s_.size() && IsDigit(s_[i_])) Advance();
    // "1..3" is a hop range, so a '.' only continues the number when a digit follows.
    if (i_ < s_.size() && s_[i_] == '.' && IsDigit(Peek(1))) {
      is_double = true;
      Advance();
      while (i_ < s_.size() && IsDigit(s_[i_])) Advance();
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      std::size_t save_i = i_;
      Pos save_pos = pos_;
      Advance();
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) Advance();
      if (i_ < s_.size() && IsDigit(s_[i_])) {
        is_double = true;
        while (i_ < s_.size() && IsDigit(s_[i_])) Advance();
      } else {
        i_ = save_i;
        pos_ = save_pos;
      }
    }
    if (i_ < s_.size() && IsIdentStart(s_[i_])) {
      return Error(pos_, fmt::format("unexpected '{}' after number", s_[i_]));
    }
    std::string_view text = s_.substr(start, i_ - start);
    t->kind = TokenKind::kNumber;
    t->text = std::string(text);
    if (!is_double) {
      std::int64_t v = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      if (r.ec == std::errc() && r.ptr == text.data() + text.size()) {
        t->number = v;
        return {};
      }
    }
    t->number = std::strtod(t->text.c_str(), nullptr);
    return {};
  }

  core::Status String(Token* t) {
    char quote = s_[i_];
    Pos start = pos_;
    Advance();
    std::string out;
    for (;;) {
      if (i_ >= s_.size())
        return Error(start, fmt::format("unterminated string: expected {}", quote));
      char c = s_[i_];
      if (c == quote) {
        Advance();
        break;
      }
      if (c == '\\') {
        Pos esc = pos_;
        Advance();
        if (i_ >= s_.size()) return Error(start, "unterminated string");
        char e = s_[i_];
        Advance();
        switch (e) {
          case '\\':
            out += '\\';
            break;
          case '\'':
            out += '\'';
            break;
          case '"':
            out += '"';
            break;
          case '/':
            out += '/';
            break;
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case 'r':
            out += '\r';
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'u': {
            unsigned cp = 0;
            if (!Hex4(&cp)) return Error(esc, "expected 4 hex digits after \\u");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              // A UTF-16 surrogate pair written as two escapes: \uD83D\uDE00.
              unsigned low = 0;
              if (Peek(0) != '\\' || Peek(1) != 'u') {
                return Error(esc, "a high surrogate must be followed by a \\u low surrogate");
              }
              Advance();
              Advance();
              if (!Hex4(&low) || low < 0xDC00 || low > 0xDFFF) {
                return Error(esc, "a high surrogate must be followed by a \\u low surrogate");
              }
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              return Error(esc, "a low surrogate without a high surrogate");
            }
            AppendUtf8(cp, &out);
            break;
          }
          default:
            return Error(esc, fmt::format("unknown escape '\\{}'", e));
        }
        continue;
      }
      out += c;
      Advance();
    }
    t->kind = TokenKind::kString;
    t->text = std::move(out);
    return {};
  }

  bool Hex4(unsigned* cp) {
    for (int k = 0; k < 4; ++k) {
      char h = Peek(0);
      int d = (h >= '0' && h <= '9')   ? h - '0'
              : (h >= 'a' && h <= 'f') ? h - 'a' + 10
              : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                       : -1;
      if (d < 0) return false;
      *cp = *cp * 16 + static_cast<unsigned>(d);
      Advance();
    }
    return true;
  }

  static void AppendUtf8(unsigned cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  core::Status Punct(Token* t) {
    char c = s_[i_];
    char n = Peek(1);
    auto one = [&](TokenKind k) {
      t->kind = k;
      t->text = std::string(1, c);
      Advance();
    };
    auto two = [&](TokenKind k) {
      t->kind = k;
      t->text = std::string(s_.substr(i_, 2));
      Advance();
      Advance();
    };
    switch (c) {
      case '(':
        one(TokenKind::kLParen);
        return {};
      case ')':
        one(TokenKind::kRParen);
        return {};
      case '[':
        one(TokenKind::kLBracket);
        return {};
      case ']':
        one(TokenKind::kRBracket);
        return {};
      case ',':
        one(TokenKind::kComma);
        return {};
      case '*':
        one(TokenKind::kStar);
        return {};
      case ':':
        one(TokenKind::kColon);
        return {};
      case '|':
        one(TokenKind::kPipe);
        return {};
      case '-':
        one(TokenKind::kMinus);
        return {};
      case '=':
        one(TokenKind::kEq);
        return {};
      case '.':
        if (n == '.') {
          two(TokenKind::kDotDot);
        } else {
          one(TokenKind::kDot);
        }
        return {};
      case '!':
        if (n == '=') {
          two(TokenKind::kNe);
          return {};
        }
        break;
      case '<':
        if (n == '=') {
          two(TokenKind::kLe);
        } else if (n == '>') {
          two(TokenKind::kNe);
        } else {
          one(TokenKind::kLt);
        }
        return {};
      case '>':
        if (n == '=') {
          two(TokenKind::kGe);
        } else {
          one(TokenKind::kGt);
        }
        return {};
      default:
        break;
    }
    std::string shown;
    if (static_cast<unsigned char>(c) < 0x20) {
      shown = fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      shown = std::string(1, c);
    }
    return Error(pos_, fmt::format("unexpected character '{}'", shown));
  }

  std::string_view s_;
  std::size_t i_ = 0;
  Pos pos_;
};

}  // namespace

core::Result<std::vector<Token>> Lex(std::string_view text) { return Lexer(text).Run(); }

std::string FormatPos(const Pos& pos) {
  return fmt::format("line {}, column {}", pos.line, pos.column);
}

std::string Describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::kEnd:
      return "end of query";
    case TokenKind::kString:
      return fmt::format("string '{}'", token.text);
    case TokenKind::kNumber:
      return fmt::format("number {}", token.text);
    case TokenKind::kQuotedIdent:
      return fmt::format("'[[{}]]'", token.text);
    default:
      return fmt::format("'{}'", token.text);
  }
}

}  // namespace doppel::twin::query::internal
