// tokenizer.json as a data::Tokenizer (see hf_tokenizer.h). The order of the steps is that
// of Hugging Face tokenizers' tokenizer/mod.rs encode: added tokens split the input first
// (added_vocabulary.rs, leftmost-longest), each remaining segment is normalized,
// pre-tokenized and given to the model. Added tokens are matched on the input as written
// (the library matches `normalized: true` ones after normalization; the families here mark
// theirs `normalized: false`).
#include "worker/data/hf_tokenizer.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "worker/data/hf_aligned_text.h"
#include "worker/data/hf_bpe.h"
#include "worker/data/hf_decoder.h"
#include "worker/data/hf_normalizer.h"
#include "worker/data/hf_pre_tokenizer.h"

namespace sweepd::data {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace hf {

// An entry of added_tokens (outside the anonymous namespace: HfTokenizer::Impl holds them).
struct AddedToken {
  int64_t id;
  std::string content;
  bool special, lstrip, rstrip, single_word;
};

}  // namespace hf

namespace {


bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool IsWordByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || std::isalnum(u) || c == '_';
}

json ReadJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return json::parse(buffer.str());
  } catch (const json::parse_error& e) {
    throw std::invalid_argument("not valid JSON (truncated or damaged?) at byte " + std::to_string(e.byte) +
                                "; fetch the file again");
  }
}

// A token named in tokenizer_config.json: "<s>", {"content": "<s>", ...} or null.
std::string NamedToken(const json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content")) return it->at("content").get<std::string>();
  throw std::invalid_argument(std::string("tokenizer_config.json: '") + key + "' must be a string or {\"content\": ...}");
}

// The special tokens a TemplateProcessing post_processor puts before and after the text
// of a single sequence, found inside a Sequence processor too.
void TemplateSpecials(const json& processor, std::string& before, std::string& after) {
  if (!processor.is_object()) return;
  const std::string type = processor.value("type", "");
  if (type == "Sequence" && processor.contains("processors")) {
    for (const auto& p : processor.at("processors")) TemplateSpecials(p, before, after);
    return;
  }
  if (type != "TemplateProcessing" || !processor.contains("single")) return;
  bool seen_text = false;
  for (const auto& piece : processor.at("single")) {
    if (piece.contains("Sequence")) {
      seen_text = true;
    } else if (piece.contains("SpecialToken")) {
      const std::string id = piece.at("SpecialToken").at("id").get<std::string>();
      (seen_text ? after : before) = id;
    }
  }
}

}  // namespace

struct HfTokenizer::Impl {
  std::string path;
  std::unique_ptr<hf::Normalizer> normalizer;
  std::unique_ptr<hf::PreTokenizer> pre_tokenizer;
  std::unique_ptr<hf::BpeModel> model;
  std::unique_ptr<hf::Decoder> decoder;
  std::vector<hf::AddedToken> added;
  std::unordered_map<int64_t, size_t> added_by_id;
  // Added tokens by first byte, longest first.
  std::vector<std::vector<size_t>> by_first_byte = std::vector<std::vector<size_t>>(256);
  int64_t vocab_size = 0;
  int64_t bos = -1, eos = -1;
  bool add_bos = false, add_eos = false;

  int64_t Id(const std::string& token) const {
    for (const auto& a : added) {
      if (a.content == token) return a.id;
    }
    return model->TokenId(token);
  }

  // The added token at `pos`, if any: its index and the range it takes (with lstrip/rstrip).
  bool MatchAdded(const std::string& text, size_t pos, size_t segment_start, bool specials, size_t& which,
                  size_t& begin, size_t& end) const {
    for (size_t i : by_first_byte[static_cast<unsigned char>(text[pos])]) {
      const hf::AddedToken& a = added[i];
      if (a.special && !specials) continue;
      if (text.compare(pos, a.content.size(), a.content) != 0) continue;
      size_t b = pos, e = pos + a.content.size();
      if (a.single_word && ((b > 0 && IsWordByte(text[b - 1])) || (e < text.size() && IsWordByte(text[e])))) continue;
      if (a.lstrip) while (b > segment_start && IsSpace(text[b - 1])) --b;
      if (a.rstrip) while (e < text.size() && IsSpace(text[e])) ++e;
      which = i;
      begin = b;
      end = e;
      return true;
    }
    return false;
  }

  void EncodeSegment(const std::string& text, size_t b, size_t e, bool track, std::vector<TokenOffset>& out) const {
    if (b >= e) return;
    std::vector<hf::AlignedText> pieces;
    pieces.push_back(hf::AlignedText::Original(std::string_view(text).substr(b, e - b), static_cast<uint32_t>(b), track));
    if (normalizer) normalizer->Apply(pieces[0]);
    if (pre_tokenizer) pre_tokenizer->Split(pieces);
    std::vector<hf::PieceToken> tokens;
    for (const auto& piece : pieces) {
      tokens.clear();
      model->Tokenize(piece.text, tokens);
      for (const auto& t : tokens) {
        if (piece.tracked()) {
          out.push_back({t.id, piece.begin[t.begin], piece.end[t.end - 1]});
        } else {
          out.push_back({t.id, b, b});
        }
      }
    }
  }

  std::vector<TokenOffset> Encode(const std::string& text, bool specials, bool track) const {
    std::vector<TokenOffset> out;
    out.reserve(text.size() / 3 + 1);
    size_t segment = 0;
    for (size_t pos = 0; pos < text.size(); ++pos) {
      if (by_first_byte[static_cast<unsigned char>(text[pos])].empty()) continue;
      size_t which = 0, b = 0, e = 0;
      if (!MatchAdded(text, pos, segment, specials, which, b, e)) continue;
      EncodeSegment(text, segment, b, track, out);
      out.push_back({added[which].id, b, e});
      segment = e;
      pos = e - 1;
    }
    EncodeSegment(text, segment, text.size(), track, out);
    if (track) MakeOffsetsDisjoint(out, text.size());
    return out;
  }
};

HfTokenizer::HfTokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HfTokenizer::~HfTokenizer() = default;

std::unique_ptr<HfTokenizer> HfTokenizer::Load(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  std::string part;  // a file other than `path` being read, for the message
  try {
    const json file = ReadJson(path);
    if (!file.is_object()) throw std::invalid_argument("not a tokenizer.json (the top level is not an object)");
    const json null;
    const json& model = file.contains("model") ? file.at("model") : null;
    if (!model.is_object()) throw std::invalid_argument("no 'model' object; is this a tokenizer.json?");
    const std::string type = model.value("type", model.contains("merges") ? "BPE" : "");
    if (type != "BPE") {
      throw std::invalid_argument("model type '" + type + "' is not supported (supported: BPE)");
    }
    impl->normalizer = hf::MakeNormalizer(file.contains("normalizer") ? file.at("normalizer") : null);
    const json& pre = file.contains("pre_tokenizer") ? file.at("pre_tokenizer") : null;
    impl->pre_tokenizer = hf::MakePreTokenizer(pre);
    impl->decoder = hf::MakeDecoder(file.contains("decoder") ? file.at("decoder") : null);
    impl->model = std::make_unique<hf::BpeModel>(model, hf::IsByteLevel(pre));
    impl->vocab_size = impl->model->Size();
    if (file.contains("added_tokens") && file.at("added_tokens").is_array()) {
      for (const auto& t : file.at("added_tokens")) {
        hf::AddedToken a{t.at("id").get<int64_t>(), t.at("content").get<std::string>(), t.value("special", false),
                     t.value("lstrip", false), t.value("rstrip", false), t.value("single_word", false)};
        if (a.content.empty()) continue;
        impl->added_by_id[a.id] = impl->added.size();
        impl->vocab_size = std::max(impl->vocab_size, a.id + 1);
        impl->added.push_back(std::move(a));
      }
    }
    for (size_t i = 0; i < impl->added.size(); ++i) {
      impl->by_first_byte[static_cast<unsigned char>(impl->added[i].content[0])].push_back(i);
    }
    for (auto& list : impl->by_first_byte) {
      std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
        return impl->added[a].content.size() > impl->added[b].content.size();
      });
    }

    std::string bos_name, eos_name;
    TemplateSpecials(file.contains("post_processor") ? file.at("post_processor") : null, bos_name, eos_name);
    impl->add_bos = !bos_name.empty();
    impl->add_eos = !eos_name.empty();
    const fs::path config_path = fs::path(path).parent_path() / "tokenizer_config.json";
    if (fs::exists(config_path)) {
      part = config_path.string();
      const json config = ReadJson(config_path.string());
      if (const std::string b = NamedToken(config, "bos_token"); !b.empty()) bos_name = b;
      if (const std::string e = NamedToken(config, "eos_token"); !e.empty()) eos_name = e;
      if (config.contains("add_bos_token") && config.at("add_bos_token").is_boolean()) impl->add_bos = config.at("add_bos_token").get<bool>();
      if (config.contains("add_eos_token") && config.at("add_eos_token").is_boolean()) impl->add_eos = config.at("add_eos_token").get<bool>();
      part.clear();
    }
    impl->bos = bos_name.empty() ? -1 : impl->Id(bos_name);
    impl->eos = eos_name.empty() ? -1 : impl->Id(eos_name);
    impl->add_bos = impl->add_bos && impl->bos >= 0;
    impl->add_eos = impl->add_eos && impl->eos >= 0;
  } catch (const json::exception& e) {
    throw std::invalid_argument((part.empty() ? path : part) + ": unexpected content: " + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument((part.empty() ? path : part) + ": " + e.what());
  }
  return std::unique_ptr<HfTokenizer>(new HfTokenizer(std::move(impl)));
}

std::vector<int64_t> HfTokenizer::Encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& t : impl_->Encode(text, false, false)) ids.push_back(t.id);
  return ids;
}

std::vector<TokenOffset> HfTokenizer::EncodeWithOffsets(const std::string& text) const {
  return impl_->Encode(text, false, true);
}

std::vector<TokenOffset> HfTokenizer::EncodeWithSpecialTokens(const std::string& text) const {
  return impl_->Encode(text, true, true);
}

std::string HfTokenizer::Decode(const std::vector<int64_t>& ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    if (const auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) {
      const hf::AddedToken& a = impl_->added[it->second];
      if (!a.special) tokens.push_back(a.content);
      continue;
    }
    if (const std::string* t = impl_->model->Token(id)) tokens.push_back(*t);
  }
  if (impl_->decoder) {
    impl_->decoder->Decode(tokens);
  } else if (!tokens.empty()) {
    // Without a decoder the library joins the tokens with spaces.
    for (size_t i = 1; i < tokens.size(); ++i) tokens[0] += " " + tokens[i];
    tokens.resize(1);
  }
  std::string text;
  for (const auto& t : tokens) text += t;
  return text;
}

int64_t HfTokenizer::VocabSize() const { return impl_->vocab_size; }
int64_t HfTokenizer::Bos() const { return impl_->bos; }
int64_t HfTokenizer::Eos() const { return impl_->eos; }
bool HfTokenizer::AddsBos() const { return impl_->add_bos; }
bool HfTokenizer::AddsEos() const { return impl_->add_eos; }
int64_t HfTokenizer::TokenId(const std::string& token) const { return impl_->Id(token); }

}  // namespace sweepd::data
