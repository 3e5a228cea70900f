// Parse config.json into ModelConfig. Two layouts are read:
//
//   hub           the config.json of the released checkpoints (for example
//                 Qwen2-VL-2B-Instruct, written by transformers 4.x): text
//                 sizes at the top level, rope_scaling {"type": "mrope",
//                 "mrope_section": [...]}, rope_theta at the top level and
//                 in_chans / spatial_patch_size in vision_config.
//   transformers 5  text sizes in text_config, rope_parameters {rope_theta,
//                 rope_type, mrope_section} inside text_config, in_channels in
//                 vision_config.
//
// Fields that transformers 5.25 fills in when they are absent get the same
// defaults here. The sizes that define the network are required.
#include "qwen2vl/config/model_config.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include "json_fields.h"
#include "qwen2vl/error.h"

namespace qwen2vl {

using config_detail::Field;
using config_detail::describe_value;
using config_detail::FieldReader;
using config_detail::find_field;
using nlohmann::json;

namespace {

constexpr const char* kSupportedModelType = "qwen2_vl";

// Defaults of transformers 5.25 (Qwen2VLTextConfig, Qwen2VLTextModel) for
// fields that a config.json may leave out.
constexpr int64_t kDefaultMaxPositionEmbeddings = 32768;
constexpr double kDefaultRmsNormEps = 1e-5;
constexpr double kDefaultRopeTheta = 1000000.0;
const std::vector<int64_t> kDefaultMropeSection = {16, 24, 24};

// Location of the text fields: `text_config` in the transformers 5 layout,
// the top level in the hub layout.
struct Sections {
  const json* root = nullptr;
  const json* text = nullptr;
  std::string text_prefix;  // "text_config." or ""
};

json parse_json_text(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& error) {
    // nlohmann's message has the form "[json.exception.parse_error.101] parse
    // error at line 3, column 5: syntax error ...", so keep the part from "line".
    std::string detail = error.what();
    auto at = detail.find(" at line ");
    if (at != std::string::npos) {
      detail = detail.substr(at + 4);
    } else {
      detail = fmt::format("byte {}: {}", error.byte, detail);
    }
    throw invalid_input(fmt::format("{}: invalid JSON at {}; fix the syntax of the file", source, detail));
  } catch (const json::out_of_range& error) {
    // nlohmann throws out_of_range.406 ("[json.exception.out_of_range.406]
    // number overflow parsing '1e400'") for a number beyond the range of double.
    std::string detail = error.what();
    auto prefix_end = detail.find("] ");
    if (prefix_end != std::string::npos) {
      detail = detail.substr(prefix_end + 2);
    }
    throw invalid_input(fmt::format(
        "{}: invalid JSON: {}; write every number with a magnitude of at most about 1.8e308, the largest double", source, detail));
  }
}

Field first_present(const std::vector<Field>& candidates) {
  for (const Field& field : candidates) {
    if (field.present()) {
      return field;
    }
  }
  return candidates.front();
}

// A field that may sit at the top level or inside text_config, such as a
// token id. The top level wins when both have it.
Field find_top_or_text(const Sections& sections, const std::string& key) {
  std::vector<Field> candidates = {find_field(*sections.root, "", key)};
  if (sections.text != sections.root) {
    candidates.push_back(find_field(*sections.text, sections.text_prefix, key));
  }
  return first_present(candidates);
}

void read_model_type(const FieldReader& reader, const json& root, ModelConfig& config) {
  Field field = find_field(root, "", "model_type");
  if (!field.present()) {
    reader.fail_missing(field, "set it to \"qwen2_vl\"; qwen2vl-export converts Qwen2-VL checkpoints only");
  }
  config.model_type = reader.read_string(field);
  if (config.model_type != kSupportedModelType) {
    // describe_value escapes control characters, so the message stays on one line.
    throw unsupported(fmt::format(
        "{}: model_type is {}, but qwen2vl-export supports only \"qwen2_vl\" (Qwen2-VL); Qwen2.5-VL "
        "(\"qwen2_5_vl\"), Qwen3-VL and other models are not supported, so use a Qwen2-VL checkpoint",
        reader.source(), describe_value(*field.value)));
  }
}

Sections find_sections(const FieldReader& reader, const json& root) {
  Sections sections;
  sections.root = &root;
  sections.text = &root;
  const json* text_config = reader.read_optional_object(find_field(root, "", "text_config"));
  if (text_config != nullptr) {
    sections.text = text_config;
    sections.text_prefix = "text_config.";
  }
  return sections;
}

// Return the rope objects that may carry mrope_section, rope_theta and
// rope_type, in lookup order. transformers 5 writes `rope_parameters` into
// text_config, and hub configs have `rope_scaling` at the top level. For each
// key, the first object that contains it wins.
std::vector<Field> rope_candidates(const FieldReader& reader, const Sections& sections) {
  std::vector<Field> candidates = {find_field(*sections.text, sections.text_prefix, "rope_parameters"),
                                   find_field(*sections.text, sections.text_prefix, "rope_scaling")};
  if (sections.text != sections.root) {
    candidates.push_back(find_field(*sections.root, "", "rope_parameters"));
    candidates.push_back(find_field(*sections.root, "", "rope_scaling"));
  }
  std::vector<Field> objects;
  for (const Field& candidate : candidates) {
    if (reader.read_optional_object(candidate) != nullptr) {
      objects.push_back(candidate);
    }
  }
  return objects;
}

std::optional<Field> find_in_rope(const std::vector<Field>& rope_objects, const std::string& key) {
  for (const Field& object : rope_objects) {
    Field field = find_field(*object.value, object.path + ".", key);
    if (field.present()) {
      return field;
    }
  }
  return std::nullopt;
}

void read_rope(const FieldReader& reader, const Sections& sections, ModelConfig& config) {
  std::vector<Field> rope_objects = rope_candidates(reader, sections);

  std::optional<Field> rope_type = find_in_rope(rope_objects, "rope_type");
  if (!rope_type) {
    rope_type = find_in_rope(rope_objects, "type");
  }
  if (rope_type) {
    // Hub configs use "mrope", which transformers 5 rewrites to "default". Other
    // types (linear, dynamic, yarn, ...) rescale the frequencies, which the
    // exported graphs do not reproduce.
    std::string type = reader.read_string(*rope_type);
    if (type != "default" && type != "mrope") {
      throw unsupported(fmt::format(
          "{}: {} is {}, but qwen2vl-export supports only the M-RoPE of Qwen2-VL (\"mrope\" or \"default\"); "
          "remove the rope scaling from config.json",
          reader.source(), rope_type->path, describe_value(*rope_type->value)));
    }
  }

  std::optional<Field> section = find_in_rope(rope_objects, "mrope_section");
  if (section) {
    config.text.mrope_section = reader.read_int_list(*section);
    config.json_paths["text.mrope_section"] = section->path;
  } else {
    // Name the object where the field belongs so the warning and any
    // validate() message point at the place to add it.
    std::string rope_path;
    if (!rope_objects.empty()) {
      rope_path = rope_objects.front().path;
    } else if (sections.text_prefix.empty()) {
      rope_path = "rope_scaling";
    } else {
      rope_path = sections.text_prefix + "rope_parameters";
    }
    config.text.mrope_section = kDefaultMropeSection;
    config.json_paths["text.mrope_section"] = rope_path + ".mrope_section";
    spdlog::warn("{}: {} has no mrope_section; using [16, 24, 24] as transformers 5.25 does", reader.source(),
                 rope_path);
  }

  std::vector<Field> theta_candidates;
  if (std::optional<Field> theta = find_in_rope(rope_objects, "rope_theta")) {
    theta_candidates.push_back(*theta);
  }
  theta_candidates.push_back(find_field(*sections.text, sections.text_prefix, "rope_theta"));
  if (sections.text != sections.root) {
    theta_candidates.push_back(find_field(*sections.root, "", "rope_theta"));
  }
  Field theta = first_present(theta_candidates);
  config.json_paths["text.rope_theta"] = theta.path;
  config.text.rope_theta = theta.present() ? reader.read_number(theta) : kDefaultRopeTheta;
}

void read_text(const FieldReader& reader, const Sections& sections, ModelConfig& config) {
  TextConfig& text = config.text;
  auto field = [&](const std::string& key) {
    Field found = find_field(*sections.text, sections.text_prefix, key);
    config.json_paths["text." + key] = found.path;
    return found;
  };

  text.hidden_size = reader.read_int(field("hidden_size"));
  text.num_hidden_layers = reader.read_int(field("num_hidden_layers"));
  text.num_attention_heads = reader.read_int(field("num_attention_heads"));
  text.intermediate_size = reader.read_int(field("intermediate_size"));
  text.vocab_size = reader.read_int(field("vocab_size"));

  // transformers 5.25 treats a missing or null num_key_value_heads as plain
  // multi-head attention.
  text.num_key_value_heads =
      reader.read_optional_int(field("num_key_value_heads")).value_or(text.num_attention_heads);

  // Qwen2-VL's attention always uses hidden_size / num_attention_heads, so a
  // head_dim in the file only has to agree with it (validate() checks).
  std::optional<int64_t> head_dim = reader.read_optional_int(field("head_dim"));
  if (head_dim) {
    text.head_dim = *head_dim;
  } else if (text.num_attention_heads > 0) {
    text.head_dim = text.hidden_size / text.num_attention_heads;
  }

  text.max_position_embeddings =
      reader.read_optional_int(field("max_position_embeddings")).value_or(kDefaultMaxPositionEmbeddings);

  Field eps = field("rms_norm_eps");
  text.rms_norm_eps = eps.present() ? reader.read_number(eps) : kDefaultRmsNormEps;

  Field act = field("hidden_act");
  if (act.present()) {
    text.hidden_act = reader.read_string(act);
  }

  read_rope(reader, sections, config);
}

// An optional vision integer that hub configs may spell differently
// (in_chans for in_channels, spatial_patch_size for patch_size). When both
// spellings are present they must agree.
void read_vision_alias(const FieldReader& reader, const json& vision, const std::string& key,
                       const std::string& alias, int64_t& out, ModelConfig& config) {
  Field primary = find_field(vision, "vision_config.", key);
  Field secondary = find_field(vision, "vision_config.", alias);
  std::optional<int64_t> primary_value = reader.read_optional_int(primary);
  std::optional<int64_t> secondary_value = reader.read_optional_int(secondary);
  if (primary_value && secondary_value && *primary_value != *secondary_value) {
    reader.fail_value(secondary, fmt::format("it disagrees with {} ({}); remove one of the two or make them equal",
                                             primary.path, *primary_value));
  }
  const Field& used = (primary_value || !secondary_value) ? primary : secondary;
  config.json_paths["vision." + key] = used.path;
  if (primary_value) {
    out = *primary_value;
  } else if (secondary_value) {
    out = *secondary_value;
  }
}

void read_vision(const FieldReader& reader, const json& root, ModelConfig& config) {
  Field section = find_field(root, "", "vision_config");
  const json* vision = reader.read_optional_object(section);
  if (vision == nullptr) {
    reader.fail_missing(section,
                        "add the vision_config object from the checkpoint's config.json; qwen2vl-export converts "
                        "the vision encoder too");
  }

  VisionConfig& out = config.vision;
  auto field = [&](const std::string& key) {
    Field found = find_field(*vision, "vision_config.", key);
    config.json_paths["vision." + key] = found.path;
    return found;
  };
  auto read_optional = [&](const std::string& key, int64_t& value) {
    if (std::optional<int64_t> found = reader.read_optional_int(field(key))) {
      value = *found;
    }
  };

  out.depth = reader.read_int(field("depth"));
  out.embed_dim = reader.read_int(field("embed_dim"));
  out.hidden_size = reader.read_int(field("hidden_size"));
  out.num_heads = reader.read_int(field("num_heads"));
  read_vision_alias(reader, *vision, "in_channels", "in_chans", out.in_channels, config);
  read_vision_alias(reader, *vision, "patch_size", "spatial_patch_size", out.patch_size, config);
  read_optional("temporal_patch_size", out.temporal_patch_size);
  read_optional("spatial_merge_size", out.spatial_merge_size);

  Field ratio = field("mlp_ratio");
  if (ratio.present()) {
    out.mlp_ratio = reader.read_number(ratio);
  }
  Field act = field("hidden_act");
  if (act.present()) {
    out.hidden_act = reader.read_string(act);
  }
}

// eos_token_id may be a list because generation stops at any of them. The
// first entry is the one dummy inputs use.
int64_t read_token_id(const FieldReader& reader, const Field& field) {
  if (field.value->is_array()) {
    if (field.value->empty()) {
      reader.fail_value(field, "expected an integer or a non-empty list of integers");
    }
    return reader.read_int(Field{&field.value->front(), field.path + "[0]"});
  }
  return reader.read_int(field);
}

void read_tokens(const FieldReader& reader, const Sections& sections, ModelConfig& config) {
  TokenIds& tokens = config.tokens;
  auto read = [&](const std::string& key, int64_t& value) {
    Field field = find_top_or_text(sections, key);
    config.json_paths["tokens." + key] = field.path;
    if (field.present()) {
      value = read_token_id(reader, field);
    }
  };
  read("image_token_id", tokens.image_token_id);
  read("video_token_id", tokens.video_token_id);
  read("vision_start_token_id", tokens.vision_start_token_id);
  read("vision_end_token_id", tokens.vision_end_token_id);
  read("bos_token_id", tokens.bos_token_id);
  read("eos_token_id", tokens.eos_token_id);
  read("pad_token_id", tokens.pad_token_id);

  // transformers only warns about these, and no exported graph depends on
  // them, so an id outside the vocabulary is not an error.
  const std::pair<const char*, int64_t> optional_ids[] = {
      {"bos_token_id", tokens.bos_token_id}, {"eos_token_id", tokens.eos_token_id}, {"pad_token_id", tokens.pad_token_id}};
  for (const auto& [key, id] : optional_ids) {
    if (id >= config.text.vocab_size) {
      spdlog::warn("{}: {} is {}, outside the vocabulary (vocab_size {})", reader.source(),
                   config.json_path(std::string("tokens.") + key), id, config.text.vocab_size);
    }
  }
}

void read_model_options(const FieldReader& reader, const Sections& sections, ModelConfig& config) {
  // transformers 5.25 ties the embeddings when either the top level or the
  // text_config (where transformers 4.x saved it) sets tie_word_embeddings.
  Field tie_root = find_field(*sections.root, "", "tie_word_embeddings");
  if (tie_root.present()) {
    config.tie_word_embeddings = reader.read_bool(tie_root);
  }
  if (sections.text != sections.root) {
    Field tie_text = find_field(*sections.text, sections.text_prefix, "tie_word_embeddings");
    if (tie_text.present() && reader.read_bool(tie_text)) {
      config.tie_word_embeddings = true;
    }
  }

  // transformers 5 writes `dtype`, older versions `torch_dtype`.
  std::vector<Field> dtype_candidates = {find_field(*sections.root, "", "dtype"),
                                         find_field(*sections.root, "", "torch_dtype")};
  if (sections.text != sections.root) {
    dtype_candidates.push_back(find_field(*sections.text, sections.text_prefix, "dtype"));
    dtype_candidates.push_back(find_field(*sections.text, sections.text_prefix, "torch_dtype"));
  }
  Field dtype = first_present(dtype_candidates);
  if (dtype.present()) {
    config.torch_dtype = reader.read_string(dtype);
  }
}

}  // namespace

ModelConfig ModelConfig::from_file(const std::filesystem::path& path) {
  std::error_code error;
  std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) {
    throw invalid_input(fmt::format(
        "config file {} not found; pass the config.json of a Qwen2-VL checkpoint, which usually sits beside the "
        "traced .pt",
        path.string()));
  }
  if (std::filesystem::is_directory(status)) {
    throw invalid_input(fmt::format("config file {} is a directory; pass the config.json inside it, for example {}",
                                    path.string(), (path / "config.json").string()));
  }

  std::ifstream stream(path, std::ios::binary);
  if (!stream) {
    throw invalid_input(fmt::format("cannot open config file {}: {}; check that it exists and is readable",
                                    path.string(), std::strerror(errno)));
  }
  std::string text((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  if (stream.bad()) {
    throw invalid_input(fmt::format("failed to read config file {}: {}; check that it is readable", path.string(),
                                    std::strerror(errno)));
  }
  return from_json_text(text, path.string());
}

ModelConfig ModelConfig::from_json_text(const std::string& text, const std::string& source) {
  FieldReader reader(source);
  json root = parse_json_text(text, source);
  if (!root.is_object()) {
    throw invalid_input(fmt::format("{}: the top level of the file is a JSON {}, expected an object {{...}} as in "
                                    "config.json",
                                    source, root.type_name()));
  }

  ModelConfig config;
  config.source = source;
  read_model_type(reader, root, config);
  Sections sections = find_sections(reader, root);
  read_text(reader, sections, config);
  read_vision(reader, root, config);
  read_tokens(reader, sections, config);
  read_model_options(reader, sections, config);

  config.validate();
  spdlog::debug("{}: Qwen2-VL with {} layers, hidden_size {}, {} heads ({} key/value), vision depth {}", source,
                config.text.num_hidden_layers, config.text.hidden_size, config.text.num_attention_heads,
                config.text.num_key_value_heads, config.vision.depth);
  return config;
}

std::string ModelConfig::json_path(const std::string& member) const {
  auto it = json_paths.find(member);
  if (it != json_paths.end()) {
    return it->second;
  }
  auto starts_with = [&](const char* prefix) { return member.rfind(prefix, 0) == 0; };
  std::string name = member.substr(member.find('.') + 1);
  if (member == "text.mrope_section" || member == "text.rope_theta") {
    return "text_config.rope_parameters." + name;
  }
  if (starts_with("text.")) {
    return "text_config." + name;
  }
  if (starts_with("vision.")) {
    return "vision_config." + name;
  }
  if (starts_with("tokens.")) {
    return name;
  }
  return member;
}

}  // namespace qwen2vl
