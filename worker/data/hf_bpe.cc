// BPE of tokenizer.json (see hf_bpe.h). The merge loop follows Hugging Face tokenizers'
// models/bpe/word.rs: a heap of candidate pairs, lowest rank first and leftmost among equal
// ranks, stale entries skipped when popped.
#include "worker/data/hf_bpe.h"

#include <cstdio>
#include <queue>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "worker/data/hf_aligned_text.h"

namespace sweepd::data::hf {
namespace {

using json = nlohmann::json;

// Pieces longer than this are tokenized without the cache (tokenizers uses the same bound).
constexpr size_t kCacheMaxPiece = 256;
constexpr size_t kCacheCapacity = 200000;

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Code point of the UTF-8 character at `s[i]`, advancing `i`; -1 for a malformed one.
int64_t NextCodePoint(std::string_view s, size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t n = Utf8Length(c);
  if (i + n > s.size() || (n == 1 && c >= 0x80)) {
    ++i;
    return -1;
  }
  uint32_t cp = n == 1 ? c : (c & (0xFF >> (n + 1)));
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

std::vector<int32_t> CharToByteTable() {
  std::vector<int32_t> table(0x200, -1);
  const auto& chars = ByteToChar();
  for (int b = 0; b < 256; ++b) {
    size_t i = 0;
    table[static_cast<size_t>(NextCodePoint(chars[b], i))] = b;
  }
  return table;
}

}  // namespace

const std::vector<std::string>& ByteToChar() {
  static const std::vector<std::string> table = [] {
    std::vector<std::string> t(256);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      AppendUtf8(printable ? b : next++, t[b]);
    }
    return t;
  }();
  return table;
}

bool CharsToBytes(std::string_view token, std::string& bytes) {
  static const std::vector<int32_t> table = CharToByteTable();
  bytes.clear();
  for (size_t i = 0; i < token.size();) {
    const int64_t cp = NextCodePoint(token, i);
    if (cp < 0 || cp >= static_cast<int64_t>(table.size()) || table[static_cast<size_t>(cp)] < 0) return false;
    bytes.push_back(static_cast<char>(table[static_cast<size_t>(cp)]));
  }
  return true;
}

BpeModel::BpeModel(const json& model, bool byte_level) : byte_level_(byte_level) {
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model.at(key).is_null() && !model.at(key).get<std::string>().empty()) {
      throw std::invalid_argument(std::string("model.") + key + " is not supported (only null)");
    }
  }
  if (model.contains("dropout") && model.at("dropout").is_number() && model.at("dropout").get<double>() > 0) {
    throw std::invalid_argument("model.dropout is not supported at encoding time (set it to null)");
  }
  ignore_merges_ = model.value("ignore_merges", false);
  byte_fallback_ = model.value("byte_fallback", false);
  fuse_unk_ = model.value("fuse_unk", false);
  const auto vocab = model.find("vocab");
  if (vocab == model.end() || !vocab->is_object()) throw std::invalid_argument("model.vocab must be an object");

  int64_t top = -1;
  for (const auto& [token, id] : vocab->items()) top = std::max(top, id.get<int64_t>());
  tokens_.resize(static_cast<size_t>(top + 1));
  vocab_.reserve(vocab->size());
  std::string bytes;
  for (const auto& [token, id_json] : vocab->items()) {
    const int64_t id = id_json.get<int64_t>();
    if (id < 0) throw std::invalid_argument("model.vocab: negative id for '" + token + "'");
    tokens_[static_cast<size_t>(id)] = token;
    if (byte_level_ && CharsToBytes(token, bytes)) {
      vocab_.emplace(bytes, id);
    } else {
      vocab_.emplace(token, id);
    }
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const std::string key = byte_level_ ? std::string(1, static_cast<char>(b)) : std::string(name);
    const auto it = vocab_.find(key);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
  if (model.contains("unk_token") && model.at("unk_token").is_string()) {
    unk_ = TokenId(model.at("unk_token").get<std::string>());
  }

  const auto merges = model.find("merges");
  if (merges == model.end() || !merges->is_array()) throw std::invalid_argument("model.merges must be a list");
  merges_.reserve(merges->size());
  int32_t rank = 0;
  for (const auto& m : *merges) {
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ', 1);
      if (space == std::string::npos) throw std::invalid_argument("model.merges[" + std::to_string(rank) + "]: '" + s + "' is not 'A B'");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      throw std::invalid_argument("model.merges[" + std::to_string(rank) + "] is neither 'A B' nor [A, B]");
    }
    const int64_t a = TokenId(left), b = TokenId(right), ab = TokenId(left + right);
    if (a < 0 || b < 0 || ab < 0) {
      throw std::invalid_argument("model.merges[" + std::to_string(rank) + "]: '" + left + " " + right +
                                  "' names a token outside model.vocab");
    }
    merges_.emplace((static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b),
                    std::make_pair(rank, static_cast<int32_t>(ab)));
    ++rank;
  }
}

BpeModel::~BpeModel() = default;

int64_t BpeModel::TokenId(const std::string& token) const {
  std::string bytes;
  const std::string& key = byte_level_ && CharsToBytes(token, bytes) ? bytes : token;
  const auto it = vocab_.find(key);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::Token(int64_t id) const {
  if (id < 0 || id >= Size() || tokens_[static_cast<size_t>(id)].empty()) return nullptr;
  return &tokens_[static_cast<size_t>(id)];
}

void BpeModel::InitialSymbols(std::string_view piece, std::vector<Symbol>& symbols) const {
  auto push = [&](int64_t id, size_t b, size_t e) {
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, static_cast<uint32_t>(b), static_cast<uint32_t>(e), n - 1, n + 1});
  };
  auto push_unk = [&](size_t b, size_t e) {
    if (unk_ < 0) return;  // no unk token: the character is dropped, as tokenizers does
    if (fuse_unk_ && !symbols.empty() && symbols.back().id == unk_ && symbols.back().end == b) {
      symbols.back().end = static_cast<uint32_t>(e);
      return;
    }
    push(unk_, b, e);
  };
  if (byte_level_) {
    for (size_t i = 0; i < piece.size(); ++i) {
      const int64_t id = byte_ids_[static_cast<unsigned char>(piece[i])];
      if (id >= 0) push(id, i, i + 1); else push_unk(i, i + 1);
    }
  } else {
    for (size_t i = 0; i < piece.size();) {
      const size_t n = std::min(Utf8Length(static_cast<unsigned char>(piece[i])), piece.size() - i);
      const auto it = vocab_.find(piece.substr(i, n));
      if (it != vocab_.end()) {
        push(it->second, i, i + n);
      } else {
        bool all = byte_fallback_;
        for (size_t k = 0; all && k < n; ++k) all = byte_ids_[static_cast<unsigned char>(piece[i + k])] >= 0;
        if (all) {
          for (size_t k = 0; k < n; ++k) push(byte_ids_[static_cast<unsigned char>(piece[i + k])], i + k, i + k + 1);
        } else {
          push_unk(i, i + n);
        }
      }
      i += n;
    }
  }
  if (!symbols.empty()) symbols.back().next = -1;
  for (size_t k = 0; k < symbols.size(); ++k) symbols[k].prev = static_cast<int32_t>(k) - 1;
}

void BpeModel::Merge(std::vector<Symbol>& symbols) const {
  struct Candidate {
    int32_t rank, pos, merged;
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  auto pair_of = [&](int64_t a, int64_t b) {
    return merges_.find((static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b));
  };
  std::vector<Candidate> storage;
  storage.reserve(symbols.size());
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(storage));
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    const auto it = pair_of(symbols[i].id, symbols[i + 1].id);
    if (it != merges_.end()) queue.push({it->second.first, static_cast<int32_t>(i), it->second.second});
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.pos)];
    if (left.id < 0 || left.next < 0) continue;  // merged away, or last
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    const auto it = pair_of(left.id, right.id);
    if (it == merges_.end() || it->second.second != top.merged) continue;  // stale
    left.id = top.merged;
    left.end = right.end;
    const int32_t after = right.next;
    right.id = -1;
    left.next = after;
    if (after >= 0) symbols[static_cast<size_t>(after)].prev = top.pos;
    if (left.prev >= 0) {
      const auto p = pair_of(symbols[static_cast<size_t>(left.prev)].id, left.id);
      if (p != merges_.end()) queue.push({p->second.first, left.prev, p->second.second});
    }
    if (after >= 0) {
      const auto n = pair_of(left.id, symbols[static_cast<size_t>(after)].id);
      if (n != merges_.end()) queue.push({n->second.first, top.pos, n->second.second});
    }
  }
}

void BpeModel::Tokenize(std::string_view piece, std::vector<PieceToken>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    const auto it = vocab_.find(piece);
    if (it != vocab_.end()) {
      out.push_back({it->second, 0, static_cast<uint32_t>(piece.size())});
      return;
    }
  }
  const bool cacheable = piece.size() <= kCacheMaxPiece;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = cache_.find(piece);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  InitialSymbols(piece, symbols);
  Merge(symbols);
  const size_t first = out.size();
  for (const auto& s : symbols) {
    if (s.id >= 0) out.push_back({s.id, s.begin, s.end});
  }
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kCacheCapacity) cache_.clear();
    cache_.emplace(std::string(piece), std::vector<PieceToken>(out.begin() + static_cast<ptrdiff_t>(first), out.end()));
  }
}

}  // namespace sweepd::data::hf
