// Jinja for chat templates (see jinja_template.h): a lexer, a recursive-descent parser with
// Jinja's operator precedence (jinja2/parser.py) and a tree-walking renderer. Whitespace
// handling follows Jinja with trim_blocks and lstrip_blocks as transformers sets them, in the
// form @huggingface/jinja implements it; the values print as Python prints them.
#include "worker/data/jinja_template.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <optional>
#include <stdexcept>
#include <vector>

namespace sweepd::data {
namespace jinja {

using json = nlohmann::ordered_json;

// Thrown inside the renderer and the parser; turned into a Status at the API boundary.
struct TemplateError : std::runtime_error {
  TemplateError(int l, const std::string& m) : std::runtime_error(m), line(l) {}
  int line;
};
struct RaisedError : TemplateError {
  using TemplateError::TemplateError;
};

// ---------------------------------------------------------------- lexer

enum class Tok { kText, kOpenExpr, kCloseExpr, kOpenStmt, kCloseStmt, kName, kString, kInt, kFloat, kOp, kEnd };

struct Token {
  Tok kind;
  std::string text;
  int line;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// transformers renders with trim_blocks and lstrip_blocks and drops the source's last newline;
// {% generation %} markers only delimit assistant text, so they go with their whitespace rules.
std::string Preprocess(std::string src) {
  if (!src.empty() && src.back() == '\n') src.pop_back();
  std::string out;
  out.reserve(src.size());
  // lstrip_blocks: spaces and tabs from a line's start up to a block or comment tag.
  for (size_t i = 0; i < src.size();) {
    if (i == 0 || src[i - 1] == '\n') {
      size_t j = i;
      while (j < src.size() && (src[j] == ' ' || src[j] == '\t')) ++j;
      if (j + 1 < src.size() && src[j] == '{' && (src[j + 1] == '#' || src[j + 1] == '%' || src[j + 1] == '-')) {
        i = j;
      }
    }
    out += src[i];
    ++i;
  }
  // trim_blocks: the first newline after a block or comment tag.
  std::string trimmed;
  trimmed.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    trimmed += out[i];
    if (i + 2 < out.size() && (out[i] == '#' || out[i] == '%' || out[i] == '-') && out[i + 1] == '}' &&
        out[i + 2] == '\n') {
      trimmed += '}';
      i += 2;
    }
  }
  // {% generation %} / {% endgeneration %}: removed, with the whitespace around them unless '-'.
  std::string result;
  size_t i = 0;
  while (i < trimmed.size()) {
    size_t open = trimmed.find("{%", i);
    if (open == std::string::npos) break;
    size_t p = open + 2;
    const bool strip_left = p < trimmed.size() && trimmed[p] == '-';
    if (strip_left) ++p;
    while (p < trimmed.size() && IsSpace(trimmed[p])) ++p;
    if (trimmed.compare(p, 3, "end") == 0) p += 3;
    if (trimmed.compare(p, 10, "generation") != 0) {
      result.append(trimmed, i, open + 2 - i);
      i = open + 2;
      continue;
    }
    p += 10;
    while (p < trimmed.size() && IsSpace(trimmed[p])) ++p;
    const bool strip_right = p < trimmed.size() && trimmed[p] == '-';
    if (strip_right) ++p;
    if (trimmed.compare(p, 2, "%}") != 0) {
      result.append(trimmed, i, open + 2 - i);
      i = open + 2;
      continue;
    }
    p += 2;
    std::string before = trimmed.substr(i, open - i);
    if (strip_left) {
      while (!before.empty() && IsSpace(before.back())) before.pop_back();
    }
    result += before;
    if (strip_right) {
      while (p < trimmed.size() && IsSpace(trimmed[p])) ++p;
    }
    i = p;
  }
  result.append(trimmed, i, std::string::npos);
  return result;
}

class Lexer {
 public:
  explicit Lexer(std::string src) : src_(Preprocess(std::move(src))) {}

  std::vector<Token> Run() {
    while (pos_ < src_.size()) {
      if (!in_tag_) {
        LexText();
        continue;
      }
      LexInTag();
    }
    if (in_tag_) throw TemplateError(line_, "unclosed tag at the end of the template");
    tokens_.push_back({Tok::kEnd, "", line_});
    return std::move(tokens_);
  }

 private:
  bool At(const char* s) const { return src_.compare(pos_, std::char_traits<char>::length(s), s) == 0; }
  void Advance(size_t n) {
    for (size_t k = 0; k < n && pos_ < src_.size(); ++k) line_ += src_[pos_++] == '\n';
  }
  void StripTrailingText() {
    if (tokens_.empty() || tokens_.back().kind != Tok::kText) return;
    std::string& t = tokens_.back().text;
    while (!t.empty() && IsSpace(t.back())) t.pop_back();
    if (t.empty()) tokens_.pop_back();
  }
  void SkipSpace() {
    while (pos_ < src_.size() && IsSpace(src_[pos_])) Advance(1);
  }

  void LexText() {
    const size_t start = pos_;
    const int line = line_;
    while (pos_ < src_.size() && !(src_[pos_] == '{' && pos_ + 1 < src_.size() &&
                                   (src_[pos_ + 1] == '{' || src_[pos_ + 1] == '%' || src_[pos_ + 1] == '#'))) {
      Advance(1);
    }
    if (pos_ > start) tokens_.push_back({Tok::kText, src_.substr(start, pos_ - start), line});
    if (pos_ >= src_.size()) return;
    if (At("{#")) {
      Advance(2);
      const bool strip_before = pos_ < src_.size() && src_[pos_] == '-';
      const size_t end = src_.find("#}", pos_);
      if (end == std::string::npos) throw TemplateError(line_, "comment {# ... is never closed with #}");
      const bool strip_after = end > pos_ && src_[end - 1] == '-';
      if (strip_before) StripTrailingText();
      Advance(end + 2 - pos_);
      if (strip_after) SkipSpace();
      return;
    }
    const bool expr = At("{{");
    Advance(2);
    if (pos_ < src_.size() && src_[pos_] == '-') {
      StripTrailingText();
      Advance(1);
    }
    tokens_.push_back({expr ? Tok::kOpenExpr : Tok::kOpenStmt, expr ? "{{" : "{%", line_});
    in_tag_ = true;
    expr_tag_ = expr;
    curly_depth_ = 0;
  }

  void LexInTag() {
    SkipSpace();
    if (pos_ >= src_.size()) return;
    const char* close = expr_tag_ ? "}}" : "%}";
    const std::string dash_close = std::string("-") + close;
    if ((curly_depth_ == 0 || !expr_tag_) && At(dash_close.c_str())) {
      tokens_.push_back({expr_tag_ ? Tok::kCloseExpr : Tok::kCloseStmt, close, line_});
      Advance(3);
      SkipSpace();
      in_tag_ = false;
      return;
    }
    if ((curly_depth_ == 0 || !expr_tag_) && At(close)) {
      tokens_.push_back({expr_tag_ ? Tok::kCloseExpr : Tok::kCloseStmt, close, line_});
      Advance(2);
      in_tag_ = false;
      return;
    }
    const char c = src_[pos_];
    if (c == '\'' || c == '"') {
      LexString(c);
      return;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      const size_t start = pos_;
      while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) Advance(1);
      bool is_float = false;
      if (pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
        is_float = true;
        Advance(1);
        while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) Advance(1);
      }
      tokens_.push_back({is_float ? Tok::kFloat : Tok::kInt, src_.substr(start, pos_ - start), line_});
      return;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const size_t start = pos_;
      while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) {
        Advance(1);
      }
      tokens_.push_back({Tok::kName, src_.substr(start, pos_ - start), line_});
      return;
    }
    static const char* kOps[] = {"==", "!=", "<=", ">=", "//", "**", "<", ">", "+", "-", "*", "/", "%", "~",
                                 "=",  "(",  ")",  "[",  "]",  "{", "}", ",", ".", ":", "|"};
    for (const char* op : kOps) {
      if (At(op)) {
        if (op[0] == '{' && op[1] == 0) ++curly_depth_;
        if (op[0] == '}' && op[1] == 0) --curly_depth_;
        tokens_.push_back({Tok::kOp, op, line_});
        Advance(std::char_traits<char>::length(op));
        return;
      }
    }
    throw TemplateError(line_, std::string("unexpected character '") + c + "' inside a tag");
  }

  void LexString(char quote) {
    const int line = line_;
    Advance(1);
    std::string s;
    while (true) {
      if (pos_ >= src_.size()) throw TemplateError(line, "string literal is never closed");
      const char c = src_[pos_];
      if (c == quote) {
        Advance(1);
        break;
      }
      if (c != '\\') {
        s += c;
        Advance(1);
        continue;
      }
      if (pos_ + 1 >= src_.size()) throw TemplateError(line, "string literal ends in a backslash");
      const char e = src_[pos_ + 1];
      Advance(2);
      switch (e) {
        case 'n': s += '\n'; break;
        case 't': s += '\t'; break;
        case 'r': s += '\r'; break;
        case 'b': s += '\b'; break;
        case 'f': s += '\f'; break;
        case 'v': s += '\v'; break;
        case '\'': s += '\''; break;
        case '"': s += '"'; break;
        case '\\': s += '\\'; break;
        default: throw TemplateError(line, std::string("unsupported escape \\") + e + " in a string literal");
      }
    }
    tokens_.push_back({Tok::kString, s, line});
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  bool in_tag_ = false;
  bool expr_tag_ = false;
  int curly_depth_ = 0;
  std::vector<Token> tokens_;
};

}  // namespace jinja

// ---------------------------------------------------------------- syntax tree

namespace jinja {

enum class Kind {
  // statements
  kBody, kText, kOutput, kIf, kFor, kSet, kSetBlock, kBreak, kContinue,
  // expressions
  kLiteral, kName, kList, kDict, kAttr, kIndex, kSlice, kCall, kKwarg, kFilter, kTest,
  kNot, kNeg, kAnd, kOr, kBinary, kTernary
};

// One node for every construct, its fields read per kind (see Parser for each shape).
struct Node {
  Kind kind;
  int line = 0;
  std::string text;  // text, name, operator, attribute, filter or test name, set attribute
  json value;        // kLiteral
  bool negate = false;
  std::vector<std::string> names;  // for-loop targets, set target
  std::vector<std::unique_ptr<Node>> kids;
};

using NodePtr = std::unique_ptr<Node>;

NodePtr MakeNode(Kind kind, int line) {
  auto n = std::make_unique<Node>();
  n->kind = kind;
  n->line = line;
  return n;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  NodePtr Template() {
    NodePtr body = Body({});
    if (Peek().kind != Tok::kEnd) throw TemplateError(Peek().line, "unexpected '" + Peek().text + "'");
    return body;
  }

 private:
  const Token& Peek(size_t ahead = 0) const { return t_[std::min(i_ + ahead, t_.size() - 1)]; }
  const Token& Next() { return t_[std::min(i_++, t_.size() - 1)]; }
  bool IsOp(const char* op, size_t ahead = 0) const {
    return Peek(ahead).kind == Tok::kOp && Peek(ahead).text == op;
  }
  bool IsName(const char* name, size_t ahead = 0) const {
    return Peek(ahead).kind == Tok::kName && Peek(ahead).text == name;
  }
  void ExpectOp(const char* op) {
    if (!IsOp(op)) throw TemplateError(Peek().line, std::string("expected '") + op + "', found '" + Peek().text + "'");
    ++i_;
  }
  void ExpectClose() {
    if (Peek().kind != Tok::kCloseStmt) {
      throw TemplateError(Peek().line, "expected '%}', found '" + Peek().text + "'");
    }
    ++i_;
  }
  std::string ExpectName() {
    if (Peek().kind != Tok::kName) throw TemplateError(Peek().line, "expected a name, found '" + Peek().text + "'");
    return Next().text;
  }
  // True when the next tokens are "{% <one of names>".
  bool AtBlock(const std::vector<std::string>& names) const {
    if (Peek().kind != Tok::kOpenStmt || Peek(1).kind != Tok::kName) return false;
    return std::find(names.begin(), names.end(), Peek(1).text) != names.end();
  }

  // Statements until one of `stops` ("{% endif" ...), which is left unread.
  NodePtr Body(const std::vector<std::string>& stops) {
    NodePtr body = MakeNode(Kind::kBody, Peek().line);
    while (Peek().kind != Tok::kEnd && !AtBlock(stops)) {
      const Token& tok = Next();
      if (tok.kind == Tok::kText) {
        NodePtr text = MakeNode(Kind::kText, tok.line);
        text->text = tok.text;
        body->kids.push_back(std::move(text));
      } else if (tok.kind == Tok::kOpenExpr) {
        NodePtr out = MakeNode(Kind::kOutput, tok.line);
        out->kids.push_back(Expression());
        if (Peek().kind != Tok::kCloseExpr) throw TemplateError(Peek().line, "expected '}}', found '" + Peek().text + "'");
        ++i_;
        body->kids.push_back(std::move(out));
      } else if (tok.kind == Tok::kOpenStmt) {
        body->kids.push_back(Statement());
      } else {
        throw TemplateError(tok.line, "unexpected '" + tok.text + "'");
      }
    }
    if (!stops.empty() && Peek().kind == Tok::kEnd) {
      throw TemplateError(Peek().line, "missing {% " + stops.back() + " %} before the end of the template");
    }
    return body;
  }

  NodePtr Statement() {
    const int line = Peek().line;
    const std::string word = ExpectName();
    if (word == "if") return If(line);
    if (word == "for") return For(line);
    if (word == "set") return Set(line);
    if (word == "break" || word == "continue") {
      ExpectClose();
      return MakeNode(word == "break" ? Kind::kBreak : Kind::kContinue, line);
    }
    throw TemplateError(line, "unsupported tag {% " + word + " %} (supported: if, for, set, break, continue)");
  }

  // kIf: kids = cond, body, cond, body, ..., [else body].
  NodePtr If(int line) {
    NodePtr node = MakeNode(Kind::kIf, line);
    node->kids.push_back(Expression());
    ExpectClose();
    node->kids.push_back(Body({"elif", "else", "endif"}));
    while (true) {
      ++i_;  // {%
      const std::string word = Next().text;
      if (word == "elif") {
        node->kids.push_back(Expression());
        ExpectClose();
        node->kids.push_back(Body({"elif", "else", "endif"}));
      } else if (word == "else") {
        ExpectClose();
        node->kids.push_back(Body({"endif"}));
      } else {
        ExpectClose();
        return node;
      }
    }
  }

  // kFor: names = targets; kids = iterable, condition (or null), body, else body (or null).
  NodePtr For(int line) {
    NodePtr node = MakeNode(Kind::kFor, line);
    node->names.push_back(ExpectName());
    while (IsOp(",")) {
      ++i_;
      node->names.push_back(ExpectName());
    }
    if (!IsName("in")) throw TemplateError(Peek().line, "expected 'in' in the for loop");
    ++i_;
    node->kids.push_back(Or());
    if (IsName("if")) {
      ++i_;
      node->kids.push_back(Or());
    } else {
      node->kids.push_back(nullptr);
    }
    ExpectClose();
    node->kids.push_back(Body({"else", "endfor"}));
    ++i_;
    if (Next().text == "else") {
      ExpectClose();
      node->kids.push_back(Body({"endfor"}));
      i_ += 2;
    } else {
      node->kids.push_back(nullptr);
    }
    ExpectClose();
    return node;
  }

  // kSet: names[0] = variable, text = attribute ("" for a plain variable), kids[0] = value.
  // kSetBlock: names[0] = variable, kids[0] = body.
  NodePtr Set(int line) {
    const std::string name = ExpectName();
    std::string attr;
    if (IsOp(".")) {
      ++i_;
      attr = ExpectName();
    }
    if (Peek().kind == Tok::kCloseStmt && attr.empty()) {
      ++i_;
      NodePtr node = MakeNode(Kind::kSetBlock, line);
      node->names.push_back(name);
      node->kids.push_back(Body({"endset"}));
      i_ += 2;
      ExpectClose();
      return node;
    }
    ExpectOp("=");
    NodePtr node = MakeNode(Kind::kSet, line);
    node->names.push_back(name);
    node->text = attr;
    node->kids.push_back(Expression());
    ExpectClose();
    return node;
  }

  // kTernary: kids = value if true, condition, value if false (or null: undefined).
  NodePtr Expression() {
    NodePtr value = Or();
    if (!IsName("if")) return value;
    NodePtr node = MakeNode(Kind::kTernary, Peek().line);
    ++i_;
    node->kids.push_back(std::move(value));
    node->kids.push_back(Or());
    if (IsName("else")) {
      ++i_;
      node->kids.push_back(Expression());
    } else {
      node->kids.push_back(nullptr);
    }
    return node;
  }

  NodePtr Binary(Kind kind, const std::string& op, NodePtr a, NodePtr b, int line) {
    NodePtr node = MakeNode(kind, line);
    node->text = op;
    node->kids.push_back(std::move(a));
    node->kids.push_back(std::move(b));
    return node;
  }

  NodePtr Or() {
    NodePtr left = And();
    while (IsName("or")) {
      const int line = Next().line;
      left = Binary(Kind::kOr, "or", std::move(left), And(), line);
    }
    return left;
  }
  NodePtr And() {
    NodePtr left = Not();
    while (IsName("and")) {
      const int line = Next().line;
      left = Binary(Kind::kAnd, "and", std::move(left), Not(), line);
    }
    return left;
  }
  NodePtr Not() {
    if (!IsName("not")) return Compare();
    NodePtr node = MakeNode(Kind::kNot, Next().line);
    node->kids.push_back(Not());
    return node;
  }
  NodePtr Compare() {
    NodePtr left = Add();
    while (true) {
      const int line = Peek().line;
      std::string op;
      if (Peek().kind == Tok::kOp && (Peek().text == "==" || Peek().text == "!=" || Peek().text == "<" ||
                                      Peek().text == ">" || Peek().text == "<=" || Peek().text == ">=")) {
        op = Next().text;
      } else if (IsName("in")) {
        ++i_;
        op = "in";
      } else if (IsName("not") && IsName("in", 1)) {
        i_ += 2;
        op = "not in";
      } else {
        return left;
      }
      left = Binary(Kind::kBinary, op, std::move(left), Add(), line);
    }
  }
  NodePtr Add() {
    NodePtr left = Concat();
    while (IsOp("+") || IsOp("-")) {
      const Token& op = Next();
      left = Binary(Kind::kBinary, op.text, std::move(left), Concat(), op.line);
    }
    return left;
  }
  NodePtr Concat() {
    NodePtr left = Multiply();
    while (IsOp("~")) {
      const int line = Next().line;
      left = Binary(Kind::kBinary, "~", std::move(left), Multiply(), line);
    }
    return left;
  }
  NodePtr Multiply() {
    NodePtr left = Unary();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const Token& op = Next();
      left = Binary(Kind::kBinary, op.text, std::move(left), Unary(), op.line);
    }
    return left;
  }
  NodePtr Unary() {
    if (IsOp("-")) {
      NodePtr node = MakeNode(Kind::kNeg, Next().line);
      node->kids.push_back(Unary());
      return node;
    }
    if (IsOp("+")) {
      ++i_;
      return Unary();
    }
    return FilterOrTest(Postfix(Primary()));
  }

  // Arguments after '(' up to ')': positional ones, then kKwarg nodes (text = name).
  void Arguments(Node& call) {
    ExpectOp("(");
    while (!IsOp(")")) {
      if (Peek().kind == Tok::kName && IsOp("=", 1)) {
        NodePtr kw = MakeNode(Kind::kKwarg, Peek().line);
        kw->text = Next().text;
        ++i_;
        kw->kids.push_back(Expression());
        call.kids.push_back(std::move(kw));
      } else {
        call.kids.push_back(Expression());
      }
      if (!IsOp(",")) break;
      ++i_;
    }
    ExpectOp(")");
  }

  NodePtr Postfix(NodePtr node) {
    while (true) {
      const int line = Peek().line;
      if (IsOp(".")) {
        ++i_;
        NodePtr attr = MakeNode(Kind::kAttr, line);
        attr->text = ExpectName();
        attr->kids.push_back(std::move(node));
        node = std::move(attr);
      } else if (IsOp("[")) {
        ++i_;
        node = Subscript(std::move(node), line);
      } else if (IsOp("(")) {
        NodePtr call = MakeNode(Kind::kCall, line);
        call->kids.push_back(std::move(node));
        Arguments(*call);
        node = std::move(call);
      } else {
        return node;
      }
    }
  }

  // kIndex: kids = object, key. kSlice: kids = object, start, stop, step (each may be null).
  NodePtr Subscript(NodePtr object, int line) {
    NodePtr parts[3];
    int colons = 0;
    while (!IsOp("]")) {
      if (IsOp(":")) {
        ++i_;
        if (++colons > 2) throw TemplateError(line, "a slice has at most two ':'");
        continue;
      }
      if (parts[colons]) throw TemplateError(line, "expected ':' or ']' in a subscript");
      parts[colons] = Expression();
    }
    ++i_;
    if (colons == 0) {
      if (!parts[0]) throw TemplateError(line, "empty subscript []");
      NodePtr index = MakeNode(Kind::kIndex, line);
      index->kids.push_back(std::move(object));
      index->kids.push_back(std::move(parts[0]));
      return index;
    }
    NodePtr slice = MakeNode(Kind::kSlice, line);
    slice->kids.push_back(std::move(object));
    for (auto& p : parts) slice->kids.push_back(std::move(p));
    return slice;
  }

  // kFilter: text = name, kids = operand, arguments. kTest: the same, negate for "is not".
  NodePtr FilterOrTest(NodePtr node) {
    while (true) {
      const int line = Peek().line;
      if (IsOp("|")) {
        ++i_;
        NodePtr filter = MakeNode(Kind::kFilter, line);
        filter->text = ExpectName();
        filter->kids.push_back(std::move(node));
        if (IsOp("(")) Arguments(*filter);
        node = Postfix(std::move(filter));
      } else if (IsName("is")) {
        ++i_;
        NodePtr test = MakeNode(Kind::kTest, line);
        if (IsName("not")) {
          ++i_;
          test->negate = true;
        }
        test->text = ExpectName();
        test->kids.push_back(std::move(node));
        if (IsOp("(")) {
          Arguments(*test);
        } else if (Peek().kind == Tok::kString || Peek().kind == Tok::kInt || Peek().kind == Tok::kFloat ||
                   (Peek().kind == Tok::kName && !IsName("and") && !IsName("or") && !IsName("if") &&
                    !IsName("else") && !IsName("is") && !IsName("in") && !IsName("not"))) {
          test->kids.push_back(Primary());  // "is divisibleby 3", "is sameas none"
        }
        node = std::move(test);
      } else {
        return node;
      }
    }
  }

  NodePtr Literal(json v, int line) {
    NodePtr node = MakeNode(Kind::kLiteral, line);
    node->value = std::move(v);
    return node;
  }

  NodePtr Primary() {
    const Token& tok = Next();
    switch (tok.kind) {
      case Tok::kString: {
        std::string s = tok.text;
        while (Peek().kind == Tok::kString) s += Next().text;  // adjacent literals concatenate
        return Literal(s, tok.line);
      }
      case Tok::kInt: return Literal(std::stoll(tok.text), tok.line);
      case Tok::kFloat: return Literal(std::stod(tok.text), tok.line);
      case Tok::kName: {
        if (tok.text == "true" || tok.text == "True") return Literal(true, tok.line);
        if (tok.text == "false" || tok.text == "False") return Literal(false, tok.line);
        if (tok.text == "none" || tok.text == "None") return Literal(nullptr, tok.line);
        NodePtr name = MakeNode(Kind::kName, tok.line);
        name->text = tok.text;
        return name;
      }
      case Tok::kOp: break;
      default: throw TemplateError(tok.line, "expected an expression, found '" + tok.text + "'");
    }
    if (tok.text == "(") {
      NodePtr inner = Expression();
      if (IsOp(",")) {  // a tuple: evaluated as a list
        NodePtr list = MakeNode(Kind::kList, tok.line);
        list->kids.push_back(std::move(inner));
        while (IsOp(",")) {
          ++i_;
          if (IsOp(")")) break;
          list->kids.push_back(Expression());
        }
        inner = std::move(list);
      }
      ExpectOp(")");
      return inner;
    }
    if (tok.text == "[") {
      NodePtr list = MakeNode(Kind::kList, tok.line);
      while (!IsOp("]")) {
        list->kids.push_back(Expression());
        if (!IsOp(",")) break;
        ++i_;
      }
      ExpectOp("]");
      return list;
    }
    if (tok.text == "{") {
      NodePtr dict = MakeNode(Kind::kDict, tok.line);
      while (!IsOp("}")) {
        dict->kids.push_back(Expression());
        ExpectOp(":");
        dict->kids.push_back(Expression());
        if (!IsOp(",")) break;
        ++i_;
      }
      ExpectOp("}");
      return dict;
    }
    throw TemplateError(tok.line, "expected an expression, found '" + tok.text + "'");
  }

  std::vector<Token> t_;
  size_t i_ = 0;
};

// ---------------------------------------------------------------- values

// A JSON value, or Jinja's undefined (a missing variable, key or attribute).
struct Value {
  json v;
  bool undefined = false;
  static Value Undefined() {
    Value x;
    x.undefined = true;
    return x;
  }
};

Value Of(json v) { return Value{std::move(v), false}; }

std::string TypeName(const Value& x) {
  if (x.undefined) return "undefined";
  switch (x.v.type()) {
    case json::value_t::null: return "none";
    case json::value_t::boolean: return "bool";
    case json::value_t::string: return "string";
    case json::value_t::array: return "list";
    case json::value_t::object: return "dict";
    case json::value_t::number_float: return "float";
    default: return "int";
  }
}

bool Truthy(const Value& x) {
  if (x.undefined) return false;
  const json& v = x.v;
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_float()) return v.get<double>() != 0.0;
  if (v.is_number()) return v.get<int64_t>() != 0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  return !v.empty();
}

// Python's repr of a float: the shortest text that reads back as the same double.
std::string FloatText(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string Repr(const json& v);

// What {{ value }} prints: Python's str().
std::string Str(const Value& x) {
  if (x.undefined) return "";
  const json& v = x.v;
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "None";
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_number_float()) return FloatText(v.get<double>());
  if (v.is_number()) return std::to_string(v.get<int64_t>());
  return Repr(v);
}

std::string StringRepr(const std::string& s) {
  const char quote = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, quote);
  for (char c : s) {
    if (c == quote || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + quote;
}

std::string Repr(const json& v) {
  if (v.is_string()) return StringRepr(v.get<std::string>());
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + Repr(v[i]);
    return out + "]";
  }
  if (v.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, e] : v.items()) {
      out += (first ? "" : ", ") + StringRepr(k) + ": " + Repr(e);
      first = false;
    }
    return out + "}";
  }
  return Str(Of(v));
}

// Python's json.dumps(value, ensure_ascii=False[, indent]), as transformers' tojson calls it.
void ToJson(const json& v, int indent, int depth, std::string& out) {
  auto newline = [&](int d) {
    out += '\n';
    out.append(static_cast<size_t>(indent * d), ' ');
  };
  if (v.is_string()) {
    out += '"';
    for (unsigned char c : v.get_ref<const std::string&>()) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
          } else {
            out += static_cast<char>(c);
          }
      }
    }
    out += '"';
  } else if (v.is_null()) {
    out += "null";
  } else if (v.is_boolean()) {
    out += v.get<bool>() ? "true" : "false";
  } else if (v.is_number_float()) {
    out += FloatText(v.get<double>());
  } else if (v.is_number()) {
    out += std::to_string(v.get<int64_t>());
  } else if (v.is_array() || v.is_object()) {
    const bool obj = v.is_object();
    out += obj ? '{' : '[';
    if (v.empty()) {
      out += obj ? '}' : ']';
      return;
    }
    bool first = true;
    for (const auto& [k, e] : v.items()) {
      if (!first) out += indent > 0 ? "," : ", ";
      first = false;
      if (indent > 0) newline(depth + 1);
      if (obj) {
        ToJson(json(k), indent, depth + 1, out);
        out += ": ";
      }
      ToJson(e, indent, depth + 1, out);
    }
    if (indent > 0) newline(depth);
    out += obj ? '}' : ']';
  }
}

// ---------------------------------------------------------------- renderer

enum class Flow { kNormal, kBreak, kContinue };

// Positional and keyword arguments of a call, evaluated.
struct Args {
  std::vector<Value> positional;
  std::map<std::string, Value> keyword;
  const Value* Get(size_t index, const std::string& name) const {
    if (index < positional.size()) return &positional[index];
    auto it = keyword.find(name);
    return it == keyword.end() ? nullptr : &it->second;
  }
};

const std::string kSpaces = " \t\n\r\f\v";

std::string Strip(const std::string& s, const std::string& chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e && chars.find(s[b]) != std::string::npos) ++b;
  }
  if (right) {
    while (e > b && chars.find(s[e - 1]) != std::string::npos) --e;
  }
  return s.substr(b, e - b);
}

class Renderer {
 public:
  explicit Renderer(const json& context) {
    scopes_.emplace_back();
    for (const auto& [k, v] : context.items()) scopes_.back()[k] = Of(v);
  }

  std::string Run(const Node& root) {
    std::string out;
    Exec(root, out);
    return out;
  }

 private:
  [[noreturn]] static void Fail(const Node& n, const std::string& message) { throw TemplateError(n.line, message); }

  Value* Lookup(const std::string& name) {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(name);
      if (found != it->end()) return &found->second;
    }
    return nullptr;
  }

  Flow Exec(const Node& n, std::string& out) {
    switch (n.kind) {
      case Kind::kBody:
        for (const auto& k : n.kids) {
          const Flow f = Exec(*k, out);
          if (f != Flow::kNormal) return f;
        }
        return Flow::kNormal;
      case Kind::kText: out += n.text; return Flow::kNormal;
      case Kind::kOutput: out += Str(Eval(*n.kids[0])); return Flow::kNormal;
      case Kind::kIf:
        for (size_t i = 0; i + 1 < n.kids.size(); i += 2) {
          if (Truthy(Eval(*n.kids[i]))) return Exec(*n.kids[i + 1], out);
        }
        if (n.kids.size() % 2 == 1) return Exec(*n.kids.back(), out);
        return Flow::kNormal;
      case Kind::kFor: ExecFor(n, out); return Flow::kNormal;
      case Kind::kSet: ExecSet(n, Eval(*n.kids[0])); return Flow::kNormal;
      case Kind::kSetBlock: {
        std::string captured;
        Exec(*n.kids[0], captured);
        scopes_.back()[n.names[0]] = Of(captured);
        return Flow::kNormal;
      }
      case Kind::kBreak: return Flow::kBreak;
      case Kind::kContinue: return Flow::kContinue;
      default: Fail(n, "internal: expression where a statement belongs");
    }
  }

  void ExecSet(const Node& n, Value value) {
    if (n.text.empty()) {
      scopes_.back()[n.names[0]] = std::move(value);
      return;
    }
    Value* target = Lookup(n.names[0]);
    if (target == nullptr || target->undefined || !target->v.is_object()) {
      Fail(n, "cannot set '" + n.names[0] + "." + n.text + "': '" + n.names[0] + "' is not a namespace()");
    }
    target->v[n.text] = value.undefined ? json() : std::move(value.v);
  }

  void Bind(const Node& n, const json& item) {
    if (n.names.size() == 1) {
      scopes_.back()[n.names[0]] = Of(item);
      return;
    }
    if (!item.is_array() || item.size() != n.names.size()) {
      Fail(n, "cannot unpack " + Repr(item) + " into " + std::to_string(n.names.size()) + " loop variables");
    }
    for (size_t i = 0; i < n.names.size(); ++i) scopes_.back()[n.names[i]] = Of(item[i]);
  }

  void ExecFor(const Node& n, std::string& out) {
    const Value iterable = Eval(*n.kids[0]);
    json items = json::array();
    if (iterable.undefined) Fail(n, "the for loop iterates over an undefined value");
    if (iterable.v.is_array()) {
      items = iterable.v;
    } else if (iterable.v.is_object()) {
      for (const auto& [k, _] : iterable.v.items()) items.push_back(k);
    } else if (iterable.v.is_string()) {
      for (char c : iterable.v.get<std::string>()) items.push_back(std::string(1, c));
    } else {
      Fail(n, "the for loop cannot iterate over a " + TypeName(iterable));
    }
    scopes_.emplace_back();
    if (n.kids[1]) {  // {% for x in xs if cond %}: the loop (and loop.*) sees only matching items
      json kept = json::array();
      for (const json& item : items) {
        Bind(n, item);
        if (Truthy(Eval(*n.kids[1]))) kept.push_back(item);
      }
      items = std::move(kept);
    }
    const int64_t length = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < length; ++i) {
      json loop = {{"index", i + 1}, {"index0", i}, {"revindex", length - i}, {"revindex0", length - i - 1},
                   {"first", i == 0}, {"last", i == length - 1}, {"length", length}};
      if (i > 0) loop["previtem"] = items[static_cast<size_t>(i - 1)];
      if (i + 1 < length) loop["nextitem"] = items[static_cast<size_t>(i + 1)];
      scopes_.back()["loop"] = Of(std::move(loop));
      Bind(n, items[static_cast<size_t>(i)]);
      if (Exec(*n.kids[2], out) == Flow::kBreak) break;
    }
    if (length == 0 && n.kids[3]) Exec(*n.kids[3], out);
    scopes_.pop_back();
  }

  Args EvalArgs(const Node& n, size_t first) {
    Args a;
    for (size_t i = first; i < n.kids.size(); ++i) {
      if (n.kids[i]->kind == Kind::kKwarg) {
        a.keyword[n.kids[i]->text] = Eval(*n.kids[i]->kids[0]);
      } else {
        a.positional.push_back(Eval(*n.kids[i]));
      }
    }
    return a;
  }

  Value Eval(const Node& n) {
    switch (n.kind) {
      case Kind::kLiteral: return Of(n.value);
      case Kind::kName: {
        Value* v = Lookup(n.text);
        return v ? *v : Value::Undefined();
      }
      case Kind::kList: {
        json list = json::array();
        for (const auto& k : n.kids) list.push_back(Eval(*k).v);
        return Of(list);
      }
      case Kind::kDict: {
        json dict = json::object();
        for (size_t i = 0; i + 1 < n.kids.size(); i += 2) {
          const Value key = Eval(*n.kids[i]);
          if (!key.v.is_string()) Fail(n, "dict keys must be strings here");
          dict[key.v.get<std::string>()] = Eval(*n.kids[i + 1]).v;
        }
        return Of(dict);
      }
      case Kind::kAttr: return Attribute(n, Eval(*n.kids[0]), n.text);
      case Kind::kIndex: return Index(n, Eval(*n.kids[0]), Eval(*n.kids[1]));
      case Kind::kSlice: return Slice(n);
      case Kind::kCall: return Call(n);
      case Kind::kFilter: return Filter(n, Eval(*n.kids[0]), EvalArgs(n, 1));
      case Kind::kTest: {
        const bool r = Test(n, Eval(*n.kids[0]), EvalArgs(n, 1));
        return Of(n.negate ? !r : r);
      }
      case Kind::kNot: return Of(!Truthy(Eval(*n.kids[0])));
      case Kind::kNeg: {
        const Value v = Eval(*n.kids[0]);
        if (v.v.is_number_float()) return Of(-v.v.get<double>());
        if (v.v.is_number() && !v.undefined) return Of(-v.v.get<int64_t>());
        Fail(n, "cannot negate a " + TypeName(v));
      }
      case Kind::kAnd: {
        Value a = Eval(*n.kids[0]);
        return Truthy(a) ? Eval(*n.kids[1]) : a;
      }
      case Kind::kOr: {
        Value a = Eval(*n.kids[0]);
        return Truthy(a) ? a : Eval(*n.kids[1]);
      }
      case Kind::kTernary:
        if (Truthy(Eval(*n.kids[1]))) return Eval(*n.kids[0]);
        return n.kids[2] ? Eval(*n.kids[2]) : Value::Undefined();
      case Kind::kBinary: return BinaryOp(n, Eval(*n.kids[0]), Eval(*n.kids[1]));
      default: Fail(n, "internal: statement where an expression belongs");
    }
  }

  Value Attribute(const Node& n, const Value& object, const std::string& name) {
    if (object.undefined) Fail(n, "'" + name + "' of an undefined value");
    if (object.v.is_object()) {
      auto it = object.v.find(name);
      if (it != object.v.end()) return Of(*it);
    }
    return Value::Undefined();
  }

  static int64_t NormalizeIndex(int64_t i, int64_t size) { return i < 0 ? i + size : i; }

  Value Index(const Node& n, const Value& object, const Value& key) {
    if (object.undefined) Fail(n, "subscript of an undefined value");
    if (object.v.is_object()) {
      if (!key.v.is_string()) return Value::Undefined();
      auto it = object.v.find(key.v.get<std::string>());
      return it == object.v.end() ? Value::Undefined() : Of(*it);
    }
    if ((object.v.is_array() || object.v.is_string()) && key.v.is_number_integer()) {
      const int64_t size = object.v.is_array() ? static_cast<int64_t>(object.v.size())
                                               : static_cast<int64_t>(object.v.get_ref<const std::string&>().size());
      const int64_t i = NormalizeIndex(key.v.get<int64_t>(), size);
      if (i < 0 || i >= size) return Value::Undefined();
      if (object.v.is_array()) return Of(object.v[static_cast<size_t>(i)]);
      return Of(std::string(1, object.v.get_ref<const std::string&>()[static_cast<size_t>(i)]));
    }
    return Value::Undefined();
  }

  // Python's slice semantics, negative steps included.
  Value Slice(const Node& n) {
    const Value object = Eval(*n.kids[0]);
    auto bound = [&](const NodePtr& p) -> std::optional<int64_t> {
      if (!p) return std::nullopt;
      const Value v = Eval(*p);
      if (v.undefined || v.v.is_null()) return std::nullopt;
      if (!v.v.is_number_integer()) Fail(n, "slice bounds must be integers");
      return v.v.get<int64_t>();
    };
    const std::optional<int64_t> start = bound(n.kids[1]), stop = bound(n.kids[2]), step_opt = bound(n.kids[3]);
    const int64_t step = step_opt.value_or(1);
    if (step == 0) Fail(n, "slice step cannot be zero");
    const bool is_string = object.v.is_string();
    if (object.undefined || (!object.v.is_array() && !is_string)) Fail(n, "cannot slice a " + TypeName(object));
    const int64_t size = is_string ? static_cast<int64_t>(object.v.get_ref<const std::string&>().size())
                                   : static_cast<int64_t>(object.v.size());
    auto clamp = [&](std::optional<int64_t> v, int64_t fallback) {
      if (!v) return fallback;
      int64_t i = *v < 0 ? *v + size : *v;
      if (step > 0) return std::clamp<int64_t>(i, 0, size);
      return std::clamp<int64_t>(i, -1, size - 1);
    };
    const int64_t b = clamp(start, step > 0 ? 0 : size - 1);
    const int64_t e = clamp(stop, step > 0 ? size : -1);
    json list = json::array();
    std::string text;
    for (int64_t i = b; step > 0 ? i < e : i > e; i += step) {
      if (is_string) {
        text += object.v.get_ref<const std::string&>()[static_cast<size_t>(i)];
      } else {
        list.push_back(object.v[static_cast<size_t>(i)]);
      }
    }
    return is_string ? Of(text) : Of(list);
  }

  Value BinaryOp(const Node& n, const Value& a, const Value& b) {
    const std::string& op = n.text;
    if (op == "==" || op == "!=") {
      const bool eq = (a.undefined && b.undefined) || (!a.undefined && !b.undefined && a.v == b.v);
      return Of(op == "==" ? eq : !eq);
    }
    if (op == "~") return Of(Str(a) + Str(b));
    if (op == "in" || op == "not in") {
      bool found = false;
      if (b.v.is_string() && a.v.is_string()) {
        found = b.v.get_ref<const std::string&>().find(a.v.get_ref<const std::string&>()) != std::string::npos;
      } else if (b.v.is_array()) {
        found = std::find(b.v.begin(), b.v.end(), a.v) != b.v.end();
      } else if (b.v.is_object() && a.v.is_string()) {
        found = b.v.contains(a.v.get<std::string>());
      } else if (!b.undefined) {
        Fail(n, "'in' needs a string, list or dict on its right, not a " + TypeName(b));
      }
      return Of(op == "in" ? found : !found);
    }
    if (a.undefined || b.undefined) {
      Fail(n, "'" + op + "' on an undefined value (" + TypeName(a) + " " + op + " " + TypeName(b) + ")");
    }
    const json& x = a.v;
    const json& y = b.v;
    if (op == "+" && x.is_string() && y.is_string()) return Of(x.get<std::string>() + y.get<std::string>());
    if (op == "+" && x.is_array() && y.is_array()) {
      json r = x;
      for (const auto& e : y) r.push_back(e);
      return Of(r);
    }
    const bool numbers = x.is_number() && y.is_number() && !x.is_boolean() && !y.is_boolean();
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      if (!(numbers || (x.is_string() && y.is_string()))) {
        Fail(n, "cannot compare a " + TypeName(a) + " with a " + TypeName(b));
      }
      if (op == "<") return Of(x < y);
      if (op == ">") return Of(y < x);
      if (op == "<=") return Of(!(y < x));
      return Of(!(x < y));
    }
    if (op == "*" && x.is_string() && y.is_number_integer()) {
      std::string r;
      for (int64_t i = 0; i < y.get<int64_t>(); ++i) r += x.get<std::string>();
      return Of(r);
    }
    if (!numbers) Fail(n, "unsupported operand types for " + op + ": " + TypeName(a) + " and " + TypeName(b));
    const bool ints = x.is_number_integer() && y.is_number_integer();
    if (ints && op != "/") {
      const int64_t p = x.get<int64_t>(), q = y.get<int64_t>();
      if (op == "+") return Of(p + q);
      if (op == "-") return Of(p - q);
      if (op == "*") return Of(p * q);
      if (q == 0) Fail(n, "division by zero");
      int64_t div = p / q, mod = p % q;
      if (mod != 0 && ((mod < 0) != (q < 0))) {  // Python floors
        --div;
        mod += q;
      }
      return Of(op == "//" ? div : mod);
    }
    const double p = x.get<double>(), q = y.get<double>();
    if (op == "+") return Of(p + q);
    if (op == "-") return Of(p - q);
    if (op == "*") return Of(p * q);
    if (q == 0) Fail(n, "division by zero");
    if (op == "/") return Of(p / q);
    if (op == "//") return Of(std::floor(p / q));
    return Of(p - std::floor(p / q) * q);
  }

  std::string StringArg(const Node& n, const Args& a, size_t index, const std::string& name, const std::string& what) {
    const Value* v = a.Get(index, name);
    if (v == nullptr || v->undefined || !v->v.is_string()) Fail(n, what + " needs a string argument");
    return v->v.get<std::string>();
  }

  Value Call(const Node& n) {
    const Node& callee = *n.kids[0];
    Args args = EvalArgs(n, 1);
    if (callee.kind == Kind::kAttr) return Method(n, Eval(*callee.kids[0]), callee.text, args);
    if (callee.kind != Kind::kName) Fail(n, "only functions and methods can be called");
    const std::string& f = callee.text;
    if (f == "raise_exception") {
      const Value* m = args.Get(0, "message");
      throw RaisedError(n.line, m ? Str(*m) : std::string("raise_exception() without a message"));
    }
    if (f == "namespace" || f == "dict") {
      json ns = json::object();
      if (!args.positional.empty() && args.positional[0].v.is_object()) ns = args.positional[0].v;
      for (const auto& [k, v] : args.keyword) ns[k] = v.v;
      return Of(ns);
    }
    if (f == "range") {
      std::vector<int64_t> p;
      for (const Value& v : args.positional) {
        if (!v.v.is_number_integer()) Fail(n, "range() needs integers");
        p.push_back(v.v.get<int64_t>());
      }
      if (p.empty() || p.size() > 3) Fail(n, "range() takes one to three integers");
      const int64_t start = p.size() > 1 ? p[0] : 0, stop = p.size() > 1 ? p[1] : p[0], step = p.size() > 2 ? p[2] : 1;
      if (step == 0) Fail(n, "range() step cannot be zero");
      json list = json::array();
      for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) list.push_back(i);
      return Of(list);
    }
    if (f == "strftime_now") {
      const std::string format = StringArg(n, args, 0, "format", "strftime_now()");
      const std::time_t now = std::time(nullptr);
      std::tm tm{};
      localtime_r(&now, &tm);
      char buf[256];
      const size_t len = std::strftime(buf, sizeof buf, format.c_str(), &tm);
      return Of(std::string(buf, len));
    }
    Fail(n, "unknown function '" + f + "' (known: raise_exception, namespace, dict, range, strftime_now)");
  }

  Value Method(const Node& n, const Value& object, const std::string& name, const Args& a) {
    if (object.undefined) Fail(n, "method '" + name + "' of an undefined value");
    const json& v = object.v;
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      auto chars = [&] {
        const Value* c = a.Get(0, "chars");
        return c && c->v.is_string() ? c->v.get<std::string>() : kSpaces;
      };
      if (name == "strip") return Of(Strip(s, chars(), true, true));
      if (name == "lstrip") return Of(Strip(s, chars(), true, false));
      if (name == "rstrip") return Of(Strip(s, chars(), false, true));
      if (name == "upper" || name == "lower") {
        std::string r = s;
        for (char& c : r) c = static_cast<char>(name == "upper" ? std::toupper(static_cast<unsigned char>(c))
                                                                : std::tolower(static_cast<unsigned char>(c)));
        return Of(r);
      }
      if (name == "title" || name == "capitalize") return Filter(n, object, Args{});
      if (name == "startswith" || name == "endswith") {
        const std::string p = StringArg(n, a, 0, "prefix", name + "()");
        const bool r = p.size() <= s.size() &&
                       (name == "startswith" ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0);
        return Of(r);
      }
      if (name == "split") return Of(Split(n, s, a));
      if (name == "replace") {
        const std::string from = StringArg(n, a, 0, "old", "replace()"), to = StringArg(n, a, 1, "new", "replace()");
        return Of(Replace(s, from, to));
      }
      if (name == "find") {
        const size_t at = s.find(StringArg(n, a, 0, "sub", "find()"));
        return Of(at == std::string::npos ? int64_t{-1} : static_cast<int64_t>(at));
      }
    }
    if (v.is_object()) {
      if (name == "items") {
        json list = json::array();
        for (const auto& [k, e] : v.items()) list.push_back(json::array({k, e}));
        return Of(list);
      }
      if (name == "keys" || name == "values") {
        json list = json::array();
        for (const auto& [k, e] : v.items()) list.push_back(name == "keys" ? json(k) : e);
        return Of(list);
      }
      if (name == "get") {
        const std::string key = StringArg(n, a, 0, "key", "get()");
        auto it = v.find(key);
        if (it != v.end()) return Of(*it);
        const Value* fallback = a.Get(1, "default");
        return fallback ? *fallback : Of(nullptr);
      }
    }
    Fail(n, "a " + TypeName(object) + " has no method '" + name + "'");
  }

  static std::string Replace(const std::string& s, const std::string& from, const std::string& to) {
    if (from.empty()) return s;
    std::string r;
    size_t i = 0;
    for (size_t at; (at = s.find(from, i)) != std::string::npos; i = at + from.size()) {
      r.append(s, i, at - i);
      r += to;
    }
    r.append(s, i, std::string::npos);
    return r;
  }

  json Split(const Node& n, const std::string& s, const Args& a) {
    const Value* sep = a.Get(0, "sep");
    json parts = json::array();
    if (sep == nullptr || sep->v.is_null() || sep->undefined) {  // runs of whitespace, no empty parts
      size_t i = 0;
      while (true) {
        while (i < s.size() && kSpaces.find(s[i]) != std::string::npos) ++i;
        if (i >= s.size()) break;
        size_t j = i;
        while (j < s.size() && kSpaces.find(s[j]) == std::string::npos) ++j;
        parts.push_back(s.substr(i, j - i));
        i = j;
      }
      return parts;
    }
    if (!sep->v.is_string() || sep->v.get_ref<const std::string&>().empty()) Fail(n, "split() needs a non-empty string");
    const std::string& d = sep->v.get_ref<const std::string&>();
    size_t i = 0;
    for (size_t at; (at = s.find(d, i)) != std::string::npos; i = at + d.size()) parts.push_back(s.substr(i, at - i));
    parts.push_back(s.substr(i));
    return parts;
  }

  static int64_t Length(const json& v) {
    if (v.is_string()) {  // characters, as Python counts them (UTF-8 code points)
      int64_t count = 0;
      for (unsigned char c : v.get_ref<const std::string&>()) count += (c & 0xC0) != 0x80;
      return count;
    }
    return static_cast<int64_t>(v.size());
  }

  Value Filter(const Node& n, const Value& x, const Args& a) {
    const std::string& f = n.kind == Kind::kFilter ? n.text : n.kids[0]->text;
    if (f == "default" || f == "d") {
      const Value* fallback = a.Get(0, "default_value");
      const Value* boolean = a.Get(1, "boolean");
      const bool use = x.undefined || (boolean && Truthy(*boolean) && !Truthy(x));
      return use ? (fallback ? *fallback : Of("")) : x;
    }
    if (f == "string") return Of(Str(x));
    if (f == "tojson") {
      const Value* indent = a.Get(0, "indent");
      std::string out;
      ToJson(x.undefined ? json() : x.v, indent && indent->v.is_number_integer() ? indent->v.get<int>() : 0, 0, out);
      return Of(out);
    }
    if (x.undefined) Fail(n, "filter '" + f + "' on an undefined value");
    const json& v = x.v;
    if (f == "safe" || f == "e" || f == "escape") return x;  // chat templates are not HTML
    if (f == "length" || f == "count") {
      if (!v.is_string() && !v.is_array() && !v.is_object()) Fail(n, "length of a " + TypeName(x));
      return Of(Length(v));
    }
    if (f == "list") {
      if (v.is_array()) return x;
      json list = json::array();
      if (v.is_object()) {
        for (const auto& [k, _] : v.items()) list.push_back(k);
      } else if (v.is_string()) {
        for (char c : v.get<std::string>()) list.push_back(std::string(1, c));
      } else {
        Fail(n, "list of a " + TypeName(x));
      }
      return Of(list);
    }
    if (f == "first" || f == "last") {
      if (v.is_array()) return v.empty() ? Value::Undefined() : Of(f == "first" ? v.front() : v.back());
      if (v.is_string()) {
        const std::string& s = v.get_ref<const std::string&>();
        return s.empty() ? Value::Undefined() : Of(std::string(1, f == "first" ? s.front() : s.back()));
      }
      Fail(n, f + " of a " + TypeName(x));
    }
    if (f == "reverse") {
      if (v.is_string()) {
        const std::string& s = v.get_ref<const std::string&>();
        return Of(std::string(s.rbegin(), s.rend()));
      }
      if (!v.is_array()) Fail(n, "reverse of a " + TypeName(x));
      json list = json::array();
      for (auto it = v.rbegin(); it != v.rend(); ++it) list.push_back(*it);
      return Of(list);
    }
    if (f == "join") {
      if (!v.is_array()) Fail(n, "join of a " + TypeName(x));
      const Value* sep = a.Get(0, "d");
      const std::string d = sep ? Str(*sep) : "";
      std::string out;
      for (size_t i = 0; i < v.size(); ++i) out += (i ? d : "") + Str(Of(v[i]));
      return Of(out);
    }
    if (f == "items") return Method(n, x, "items", a);
    if (f == "selectattr" || f == "rejectattr") return SelectAttr(n, x, a, f == "selectattr");
    if (f == "map") {
      const Value* attr = a.Get(99, "attribute");
      if (!v.is_array() || attr == nullptr || !attr->v.is_string()) Fail(n, "map() here takes attribute='name' on a list");
      json list = json::array();
      for (const json& e : v) {
        const Value got = Attribute(n, Of(e), attr->v.get<std::string>());
        list.push_back(got.undefined ? json() : got.v);
      }
      return Of(list);
    }
    if (f == "int") {
      if (v.is_number()) return Of(static_cast<int64_t>(v.get<double>()));
      if (v.is_string()) {
        try {
          return Of(static_cast<int64_t>(std::stoll(v.get<std::string>())));
        } catch (const std::exception&) {
          return Of(0);
        }
      }
      return Of(0);
    }
    if (f == "abs" && v.is_number()) return v.is_number_float() ? Of(std::fabs(v.get<double>())) : Of(std::llabs(v.get<int64_t>()));
    if (!v.is_string()) Fail(n, "filter '" + f + "' needs a string, not a " + TypeName(x));
    const std::string& s = v.get_ref<const std::string&>();
    if (f == "trim") {
      const Value* c = a.Get(0, "chars");
      return Of(Strip(s, c && c->v.is_string() ? c->v.get<std::string>() : kSpaces, true, true));
    }
    if (f == "upper" || f == "lower") return Method(n, x, f, a);
    if (f == "capitalize" || f == "title") {
      std::string r = s;
      bool start = true;
      for (char& c : r) {
        const auto u = static_cast<unsigned char>(c);
        if (f == "capitalize") {
          c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
          start = false;
        } else {
          c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
          start = !std::isalnum(u) && c != '\'';
        }
      }
      return Of(r);
    }
    if (f == "replace") return Of(Replace(s, StringArg(n, a, 0, "old", "replace"), StringArg(n, a, 1, "new", "replace")));
    Fail(n, "unknown filter '" + f + "'");
  }

  Value SelectAttr(const Node& n, const Value& x, const Args& a, bool keep_matches) {
    if (!x.v.is_array()) Fail(n, "selectattr/rejectattr on a " + TypeName(x));
    const std::string attr = StringArg(n, a, 0, "attr", "selectattr");
    Args test_args;
    std::string test = "truthy";
    if (a.positional.size() > 1) {
      test = Str(a.positional[1]);
      test_args.positional.assign(a.positional.begin() + 2, a.positional.end());
    }
    json list = json::array();
    for (const json& e : x.v) {
      const Value got = Attribute(n, Of(e), attr);
      const bool match = test == "truthy" ? Truthy(got) : TestByName(n, test, got, test_args);
      if (match == keep_matches) list.push_back(e);
    }
    return Of(list);
  }

  bool Test(const Node& n, const Value& x, const Args& a) { return TestByName(n, n.text, x, a); }

  bool TestByName(const Node& n, const std::string& t, const Value& x, const Args& a) {
    const json& v = x.v;
    const bool def = !x.undefined;
    if (t == "defined") return def;
    if (t == "undefined") return !def;
    if (t == "none") return def && v.is_null();
    if (t == "string") return def && v.is_string();
    if (t == "boolean") return def && v.is_boolean();
    if (t == "true") return def && v.is_boolean() && v.get<bool>();
    if (t == "false") return def && v.is_boolean() && !v.get<bool>();
    if (t == "number") return def && v.is_number() && !v.is_boolean();
    if (t == "integer") return def && v.is_number_integer();
    if (t == "float") return def && v.is_number_float();
    if (t == "mapping") return def && v.is_object();
    if (t == "sequence" || t == "iterable") return def && (v.is_array() || v.is_string() || v.is_object());
    if (t == "odd" || t == "even") {
      if (!v.is_number_integer()) Fail(n, "'" + t + "' test of a " + TypeName(x));
      return (v.get<int64_t>() % 2 != 0) == (t == "odd");
    }
    if (t == "divisibleby") {
      const Value* d = a.Get(0, "num");
      if (!v.is_number_integer() || !d || !d->v.is_number_integer() || d->v.get<int64_t>() == 0) {
        Fail(n, "'divisibleby' needs integers");
      }
      return v.get<int64_t>() % d->v.get<int64_t>() == 0;
    }
    if (t == "equalto" || t == "eq" || t == "==" || t == "sameas" || t == "ne" || t == "!=") {
      const Value* other = a.Get(0, "other");
      const bool eq = other && def == !other->undefined && (!def || v == other->v);
      return (t == "ne" || t == "!=") ? !eq : eq;
    }
    if (t == "lower" || t == "upper") {
      if (!v.is_string()) return false;
      const std::string& s = v.get_ref<const std::string&>();
      return std::none_of(s.begin(), s.end(), [&](char c) {
        return t == "lower" ? std::isupper(static_cast<unsigned char>(c)) : std::islower(static_cast<unsigned char>(c));
      });
    }
    Fail(n, "unknown test '" + t + "'");
  }

  std::vector<std::map<std::string, Value>> scopes_;
};

}  // namespace jinja

Result<JinjaTemplate> JinjaTemplate::Parse(const std::string& source, const std::string& where) {
  try {
    jinja::Lexer lexer(source);
    jinja::Parser parser(lexer.Run());
    JinjaTemplate t;
    t.root_ = parser.Template();
    t.where_ = where;
    return t;
  } catch (const jinja::TemplateError& e) {
    return Status::InvalidArgument(where + ": chat template line " + std::to_string(e.line) + ": " + e.what());
  }
}

Result<std::string> JinjaTemplate::Render(const nlohmann::ordered_json& context) const {
  try {
    jinja::Renderer renderer(context);
    return renderer.Run(*root_);
  } catch (const jinja::RaisedError& e) {
    return Status::InvalidArgument(where_ + ": the chat template raised an exception (line " + std::to_string(e.line) +
                                   "): " + e.what());
  } catch (const jinja::TemplateError& e) {
    return Status::InvalidArgument(where_ + ": chat template line " + std::to_string(e.line) + ": " + e.what());
  }
}

}  // namespace sweepd::data
