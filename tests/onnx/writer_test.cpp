#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <numeric>

#include <gtest/gtest.h>

#include "onnx/onnx.pb.h"
#include "qwen2vl/error.h"
#include "qwen2vl/onnx/summary.h"
#include "qwen2vl/onnx/writer.h"
#include "test_support.h"

namespace qwen2vl::onnx {
namespace {

using testing::chain_model;
using testing::float_initializer;
using testing::linear_model;
using testing::list_names;
using testing::read_bytes;
using testing::TempDir;

::onnx::ModelProto parse_model(const std::filesystem::path& path) {
  ::onnx::ModelProto proto;
  EXPECT_TRUE(proto.ParseFromString(read_bytes(path))) << path;
  return proto;
}

const Initializer& find_initializer(const Model& model, const std::string& name) {
  for (const Initializer& initializer : model.graph.initializers) {
    if (initializer.name == name) {
      return initializer;
    }
  }
  throw std::out_of_range("no initializer " + name);
}

// Checks that every external entry's bytes in its data file equal the weight.
void expect_data_matches(const Model& model, const std::filesystem::path& folder, const ModelSummary& summary) {
  for (const ExternalDataEntry& entry : summary.external_data) {
    const Initializer& initializer = find_initializer(model, entry.tensor_name);
    std::string data = read_bytes(folder / entry.location);
    ASSERT_TRUE(entry.length.has_value()) << entry.tensor_name;
    ASSERT_LE(entry.offset + *entry.length, data.size()) << entry.tensor_name;
    EXPECT_EQ(0, std::memcmp(data.data() + entry.offset, initializer.data, initializer.byte_size)) << entry.tensor_name;
  }
}

TEST(OnnxWriter, OffsetsAlignedAndFileSizeExact) {
  TempDir dir;
  Model model = chain_model(5);
  model.graph.initializers.push_back(float_initializer("odd.weight", std::vector<float>(3, 2.0f), {3}));
  WriteResult result = write_model(model, dir.path() / "model.onnx");

  ModelSummary summary = summarize_model(dir.path() / "model.onnx");
  ASSERT_EQ(summary.external_data.size(), 6u);
  uint64_t payload = 0;
  uint64_t padding = 0;
  uint64_t end = 0;
  for (const ExternalDataEntry& entry : summary.external_data) {
    EXPECT_EQ(entry.location, "model.onnx_data");
    EXPECT_EQ(entry.offset % 4096, 0u) << entry.tensor_name << " at " << entry.offset;
    ASSERT_TRUE(entry.length.has_value());
    EXPECT_EQ(*entry.length, find_initializer(model, entry.tensor_name).byte_size);
    ASSERT_GE(entry.offset, end);
    padding += entry.offset - end;
    payload += *entry.length;
    end = entry.offset + *entry.length;
  }

  const auto data_path = dir.path() / "model.onnx_data";
  EXPECT_EQ(std::filesystem::file_size(data_path), payload + padding);
  EXPECT_EQ(payload, 5u * 1024 + 12);
  EXPECT_EQ(result.weight_bytes, payload);
  ASSERT_EQ(result.data_files.size(), 1u);
  EXPECT_EQ(result.data_files[0].path, data_path);
  EXPECT_EQ(result.data_files[0].bytes, payload + padding);
  EXPECT_EQ(result.model_bytes, std::filesystem::file_size(dir.path() / "model.onnx"));

  // The padding between tensors is zeros.
  std::string data = read_bytes(data_path);
  EXPECT_EQ(data.substr(1024, 4096 - 1024), std::string(4096 - 1024, '\0'));
  expect_data_matches(model, dir.path(), summary);
}

TEST(OnnxWriter, CustomAlignment) {
  TempDir dir;
  Model model = chain_model(3);
  model.graph.initializers.insert(model.graph.initializers.begin(),
                                  float_initializer("first.weight", std::vector<float>(5, 1.0f), {5}));
  WriteOptions options;
  options.alignment = 64;
  write_model(model, dir.path() / "model.onnx", options);

  ModelSummary summary = summarize_model(dir.path() / "model.onnx");
  ASSERT_EQ(summary.external_data.size(), 4u);
  EXPECT_EQ(summary.external_data[0].offset, 0u);
  EXPECT_EQ(summary.external_data[1].offset, 64u);  // 20 bytes rounded up to 64
  EXPECT_EQ(summary.external_data[2].offset, 64u + 1024);
  EXPECT_EQ(std::filesystem::file_size(dir.path() / "model.onnx_data"), 64u + 3 * 1024);
}

TEST(OnnxWriter, ChunksSplitAtLimit) {
  TempDir dir;
  Model model = chain_model(5);
  WriteOptions options;
  options.max_chunk_bytes = 8192;
  WriteResult result = write_model(model, dir.path() / "model.onnx", options);

  // Two 1024-byte tensors at offsets 0 and 4096 fill 5120 bytes. A third
  // would end at 9216, over the limit, so it starts the next file.
  ModelSummary summary = summarize_model(dir.path() / "model.onnx");
  std::vector<std::string> locations;
  std::vector<uint64_t> offsets;
  for (const ExternalDataEntry& entry : summary.external_data) {
    locations.push_back(entry.location);
    offsets.push_back(entry.offset);
  }
  EXPECT_EQ(locations, (std::vector<std::string>{"model.onnx_data", "model.onnx_data", "model.onnx_data_1",
                                                 "model.onnx_data_1", "model.onnx_data_2"}));
  EXPECT_EQ(offsets, (std::vector<uint64_t>{0, 4096, 0, 4096, 0}));

  ASSERT_EQ(result.data_files.size(), 3u);
  EXPECT_EQ(result.data_files[1].path, dir.path() / "model.onnx_data_1");
  EXPECT_EQ(result.data_files[2].path, dir.path() / "model.onnx_data_2");
  for (const WrittenFile& file : result.data_files) {
    EXPECT_LE(std::filesystem::file_size(file.path), options.max_chunk_bytes) << file.path;
    EXPECT_EQ(std::filesystem::file_size(file.path), file.bytes) << file.path;
  }
  EXPECT_EQ(std::filesystem::file_size(dir.path() / "model.onnx_data_2"), 1024u);
  EXPECT_EQ(list_names(dir.path()), (std::vector<std::string>{"model.onnx", "model.onnx_data", "model.onnx_data_1",
                                                              "model.onnx_data_2"}));
  expect_data_matches(model, dir.path(), summary);
}

TEST(OnnxWriter, OversizedTensorGetsOwnFile) {
  TempDir dir;
  Model model;
  model.graph.initializers.push_back(float_initializer("small.0", std::vector<float>(256, 1.0f), {256}));
  model.graph.initializers.push_back(float_initializer("large", std::vector<float>(2048, 2.0f), {2048}));
  model.graph.initializers.push_back(float_initializer("small.1", std::vector<float>(256, 3.0f), {256}));
  WriteOptions options;
  options.max_chunk_bytes = 4096;
  WriteResult result = write_model(model, dir.path() / "m.onnx", options);

  ModelSummary summary = summarize_model(dir.path() / "m.onnx");
  ASSERT_EQ(summary.external_data.size(), 3u);
  EXPECT_EQ(summary.external_data[0].location, "m.onnx_data");
  EXPECT_EQ(summary.external_data[1].location, "m.onnx_data_1");
  EXPECT_EQ(summary.external_data[1].offset, 0u);
  EXPECT_EQ(summary.external_data[2].location, "m.onnx_data_2");
  ASSERT_EQ(result.data_files.size(), 3u);
  EXPECT_EQ(std::filesystem::file_size(dir.path() / "m.onnx_data_1"), 8192u);
  expect_data_matches(model, dir.path(), summary);
}

TEST(OnnxWriter, IdenticalBytesOnRewrite) {
  TempDir first;
  TempDir second;
  Model model = linear_model();
  WriteOptions options;
  options.max_chunk_bytes = 8192;
  WriteResult a = write_model(model, first.path() / "model.onnx", options);
  WriteResult b = write_model(model, second.path() / "model.onnx", options);

  ASSERT_EQ(list_names(first.path()), list_names(second.path()));
  for (const std::string& name : list_names(first.path())) {
    EXPECT_EQ(read_bytes(first.path() / name), read_bytes(second.path() / name)) << name;
  }
  // Writing over an existing model replaces it with the same bytes.
  std::string before = read_bytes(first.path() / "model.onnx");
  write_model(model, first.path() / "model.onnx", options);
  EXPECT_EQ(read_bytes(first.path() / "model.onnx"), before);
  EXPECT_EQ(a.model_bytes, b.model_bytes);
}

TEST(OnnxWriter, ProgressReportsEveryInitializer) {
  TempDir dir;
  Model model = chain_model(4);
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  WriteOptions options;
  options.progress = [&calls](uint64_t done, uint64_t total) { calls.emplace_back(done, total); };
  write_model(model, dir.path() / "model.onnx", options);

  ASSERT_EQ(calls.size(), 4u);
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].first, (i + 1) * 1024);
    EXPECT_EQ(calls[i].second, 4u * 1024);
  }
}

TEST(OnnxWriter, ModelFieldsInProto) {
  TempDir dir;
  Model model = linear_model();
  model.graph.outputs.push_back(ValueInfo{"rank_unknown", DataType::kInt64, std::nullopt});
  model.graph.outputs.push_back(ValueInfo{"scalar", DataType::kBool, std::vector<Dim>{}});
  model.graph.outputs.push_back(ValueInfo{"unnamed_dim", DataType::kFloat16, std::vector<Dim>{Dim{-1, ""}}});
  write_model(model, dir.path() / "model.onnx");
  ::onnx::ModelProto proto = parse_model(dir.path() / "model.onnx");

  EXPECT_EQ(proto.ir_version(), 8);
  ASSERT_EQ(proto.opset_import_size(), 1);
  EXPECT_EQ(proto.opset_import(0).domain(), "");
  EXPECT_EQ(proto.opset_import(0).version(), 18);
  EXPECT_EQ(proto.producer_name(), "qwen2vl-export");
  EXPECT_EQ(proto.producer_version(), "0.1.0-test");
  ASSERT_EQ(proto.metadata_props_size(), 2);
  EXPECT_EQ(proto.metadata_props(0).key(), "task");
  EXPECT_EQ(proto.metadata_props(1).key(), "a_second_key");
  EXPECT_EQ(proto.metadata_props(1).value(), "kept in this order");

  const ::onnx::GraphProto& graph = proto.graph();
  EXPECT_EQ(graph.name(), "linear");
  const auto& input_shape = graph.input(0).type().tensor_type().shape();
  ASSERT_EQ(input_shape.dim_size(), 2);
  EXPECT_EQ(input_shape.dim(0).dim_param(), "batch_size");
  EXPECT_FALSE(input_shape.dim(0).has_dim_value());
  EXPECT_EQ(input_shape.dim(1).dim_value(), 64);
  EXPECT_EQ(graph.input(0).type().tensor_type().elem_type(), ::onnx::TensorProto::FLOAT);

  ASSERT_EQ(graph.output_size(), 4);
  EXPECT_EQ(graph.output(0).name(), "past_key_values.0.key");
  EXPECT_FALSE(graph.output(1).type().tensor_type().has_shape());
  EXPECT_EQ(graph.output(1).type().tensor_type().elem_type(), ::onnx::TensorProto::INT64);
  EXPECT_TRUE(graph.output(2).type().tensor_type().has_shape());
  EXPECT_EQ(graph.output(2).type().tensor_type().shape().dim_size(), 0);
  const auto& unnamed = graph.output(3).type().tensor_type().shape().dim(0);
  EXPECT_FALSE(unnamed.has_dim_value());
  EXPECT_FALSE(unnamed.has_dim_param());

  ASSERT_EQ(graph.node_size(), 3);
  EXPECT_EQ(graph.node(0).op_type(), "MatMul");
  EXPECT_EQ(graph.node(0).name(), "matmul");
  EXPECT_EQ(graph.node(0).doc_string(), "test.py:1");
  EXPECT_EQ(graph.node(2).output(0), "past_key_values.0.key");

  // External weight first, then the inline initializers sorted by name.
  ASSERT_EQ(graph.initializer_size(), 3);
  const ::onnx::TensorProto& weight = graph.initializer(0);
  EXPECT_EQ(weight.name(), "linear.weight");
  EXPECT_EQ(weight.data_location(), ::onnx::TensorProto::EXTERNAL);
  EXPECT_FALSE(weight.has_raw_data());
  ASSERT_EQ(weight.external_data_size(), 3);
  EXPECT_EQ(weight.external_data(0).key(), "location");
  EXPECT_EQ(weight.external_data(0).value(), "model.onnx_data");
  EXPECT_EQ(weight.external_data(1).key(), "offset");
  EXPECT_EQ(weight.external_data(1).value(), "0");
  EXPECT_EQ(weight.external_data(2).key(), "length");
  EXPECT_EQ(weight.external_data(2).value(), "16384");

  const ::onnx::TensorProto& bias = graph.initializer(1);
  EXPECT_EQ(bias.name(), "linear.bias");
  EXPECT_NE(bias.data_location(), ::onnx::TensorProto::EXTERNAL);
  EXPECT_EQ(bias.raw_data().size(), 64u * 4);
  const ::onnx::TensorProto& shape = graph.initializer(2);
  EXPECT_EQ(shape.name(), "reshape.shape");
  EXPECT_EQ(shape.data_type(), ::onnx::TensorProto::INT64);
  ASSERT_EQ(shape.raw_data().size(), 3u * 8);
  int64_t first = 0;
  std::memcpy(&first, shape.raw_data().data(), 8);
  EXPECT_EQ(first, -1);
}

TEST(OnnxWriter, AllAttributeKinds) {
  TempDir dir;
  Model model;
  model.domain_opsets["test.domain"] = 3;
  Node node;
  node.op_type = "Everything";
  node.domain = "test.domain";
  node.name = "everything";
  node.inputs = {"a", ""};
  node.outputs = {"b"};
  node.attributes = {
      {"i", int64_t{-7}},
      {"f", 0.5f},
      {"s", std::string("text")},
      {"ints", std::vector<int64_t>{1, 2, 3}},
      {"floats", std::vector<float>{1.5f, -2.0f}},
      {"strings", std::vector<std::string>{"x", "y"}},
      {"t", TensorValue::float_scalar(1.0f, DataType::kFloat16)},
      {"empty_ints", std::vector<int64_t>{}},
  };
  model.graph.nodes.push_back(node);
  write_model(model, dir.path() / "model.onnx");
  ::onnx::ModelProto proto = parse_model(dir.path() / "model.onnx");

  ASSERT_EQ(proto.opset_import_size(), 2);
  EXPECT_EQ(proto.opset_import(1).domain(), "test.domain");
  EXPECT_EQ(proto.opset_import(1).version(), 3);
  const ::onnx::NodeProto& written = proto.graph().node(0);
  EXPECT_EQ(written.domain(), "test.domain");
  ASSERT_EQ(written.input_size(), 2);
  EXPECT_EQ(written.input(1), "");
  ASSERT_EQ(written.attribute_size(), 8);

  using A = ::onnx::AttributeProto;
  EXPECT_EQ(written.attribute(0).type(), A::INT);
  EXPECT_EQ(written.attribute(0).i(), -7);
  EXPECT_EQ(written.attribute(1).type(), A::FLOAT);
  EXPECT_EQ(written.attribute(1).f(), 0.5f);
  EXPECT_EQ(written.attribute(2).type(), A::STRING);
  EXPECT_EQ(written.attribute(2).s(), "text");
  EXPECT_EQ(written.attribute(3).type(), A::INTS);
  EXPECT_EQ(std::vector<int64_t>(written.attribute(3).ints().begin(), written.attribute(3).ints().end()),
            (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(written.attribute(4).type(), A::FLOATS);
  ASSERT_EQ(written.attribute(4).floats_size(), 2);
  EXPECT_EQ(written.attribute(4).floats(1), -2.0f);
  EXPECT_EQ(written.attribute(5).type(), A::STRINGS);
  EXPECT_EQ(written.attribute(5).strings(1), "y");
  EXPECT_EQ(written.attribute(6).type(), A::TENSOR);
  EXPECT_EQ(written.attribute(6).t().data_type(), ::onnx::TensorProto::FLOAT16);
  EXPECT_EQ(written.attribute(6).t().dims_size(), 0);
  EXPECT_EQ(written.attribute(6).t().raw_data(), std::string("\x00\x3c", 2));  // 1.0 in binary16
  EXPECT_EQ(written.attribute(7).type(), A::INTS);
  EXPECT_EQ(written.attribute(7).ints_size(), 0);
}

TEST(OnnxWriter, ZeroByteInitializerStaysInline) {
  TempDir dir;
  Model model = chain_model(1);
  Initializer empty;
  empty.name = "empty";
  empty.dims = {0, 4};
  model.graph.initializers.push_back(empty);
  WriteResult result = write_model(model, dir.path() / "model.onnx");

  ModelSummary summary = summarize_model(dir.path() / "model.onnx");
  ASSERT_EQ(summary.external_data.size(), 1u);
  EXPECT_EQ(summary.external_data[0].tensor_name, "chain.0.weight");
  ::onnx::ModelProto proto = parse_model(dir.path() / "model.onnx");
  ASSERT_EQ(proto.graph().initializer_size(), 2);
  EXPECT_EQ(proto.graph().initializer(1).name(), "empty");
  EXPECT_EQ(proto.graph().initializer(1).dims(0), 0);
  EXPECT_NE(proto.graph().initializer(1).data_location(), ::onnx::TensorProto::EXTERNAL);
  EXPECT_EQ(result.data_files.size(), 1u);
}

TEST(OnnxWriter, NoDataFileWithoutWeights) {
  TempDir dir;
  Model model;
  model.graph.inline_initializers["c"] = TensorValue::int64_scalar(3);
  WriteResult result = write_model(model, dir.path() / "model.onnx");
  EXPECT_TRUE(result.data_files.empty());
  EXPECT_EQ(list_names(dir.path()), std::vector<std::string>{"model.onnx"});
}

TEST(OnnxSummary, InlineBytesAndLargestTensor) {
  TempDir dir;
  Model model = linear_model();
  Node constant{"Constant", {}, {"c"}, {{"value", TensorValue::floats(std::vector<float>(100, 1.0f), {100})}},
                "big_constant", "", ""};
  model.graph.nodes.push_back(constant);
  write_model(model, dir.path() / "model.onnx");

  ModelSummary summary = summarize_model(dir.path() / "model.onnx");
  EXPECT_EQ(summary.ir_version, 8);
  EXPECT_EQ(summary.opset, 18);
  EXPECT_EQ(summary.producer_name, "qwen2vl-export");
  EXPECT_EQ(summary.input_names, std::vector<std::string>{"x"});
  EXPECT_EQ(summary.output_names, std::vector<std::string>{"past_key_values.0.key"});
  EXPECT_EQ(summary.node_count, 4u);
  EXPECT_EQ(summary.inline_tensor_bytes, 64u * 4 + 3 * 8 + 100 * 4);
  EXPECT_EQ(summary.largest_inline_tensor_bytes, 400u);
  EXPECT_EQ(summary.largest_inline_tensor, "node big_constant, attribute value");
}

TEST(OnnxSummary, InvalidFileThrows) {
  TempDir dir;
  std::ofstream(dir.path() / "bad.onnx") << "this is not a protobuf message \xff\xff\xff";
  try {
    summarize_model(dir.path() / "bad.onnx");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kInvalidInput);
  }
  try {
    summarize_model(dir.path() / "missing.onnx");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kIo);
    EXPECT_NE(std::string(error.what()).find("missing.onnx"), std::string::npos);
  }
}

// The writer streams weights from their pointers: neither the .onnx file nor
// the process's peak memory grows by the size of the weights.
TEST(OnnxWriter, WeightsStreamedNotCopied) {
  TempDir dir;
  constexpr int64_t kRows = 4096;
  constexpr int64_t kCols = 4096;  // 64 MiB of float32
  Model model;
  model.graph.initializers.push_back(
      float_initializer("huge.weight", std::vector<float>(kRows * kCols, 0.25f), {kRows, kCols}));
  model.graph.initializers.push_back(float_initializer("second.weight", std::vector<float>(1000, 0.5f), {1000}));

  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  write_model(model, dir.path() / "model.onnx");
  rusage after{};
  getrusage(RUSAGE_SELF, &after);

  ModelSummary summary = summarize_model(dir.path() / "model.onnx");
  EXPECT_EQ(summary.inline_tensor_bytes, 0u);
  ASSERT_EQ(summary.external_data.size(), 2u);
  EXPECT_EQ(summary.external_data[1].offset, static_cast<uint64_t>(kRows * kCols * 4));
  EXPECT_LT(std::filesystem::file_size(dir.path() / "model.onnx"), 4096u);
  // ru_maxrss is in KiB. A copy of the weight would add 64 MiB to the peak.
  EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 16 * 1024) << "peak RSS grew from " << before.ru_maxrss << " KiB to "
                                                           << after.ru_maxrss << " KiB";
}

TEST(OnnxWriter, InconsistentInitializerThrowsInternal) {
  TempDir dir;
  Model model = chain_model(1);
  model.graph.initializers[0].byte_size = 100;
  try {
    write_model(model, dir.path() / "model.onnx");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kInternal);
    EXPECT_NE(std::string(error.what()).find("chain.0.weight"), std::string::npos) << error.what();
  }
  EXPECT_TRUE(list_names(dir.path()).empty());
}

TEST(OnnxWriter, UndeclaredDomainThrowsInternal) {
  TempDir dir;
  Model model;
  model.graph.nodes.push_back(Node{"FusedThing", {"a"}, {"b"}, {}, "fused", "com.example", ""});
  try {
    write_model(model, dir.path() / "model.onnx");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kInternal);
    EXPECT_NE(std::string(error.what()).find("com.example"), std::string::npos) << error.what();
  }
}

TEST(OnnxWriter, DuplicateInitializerThrowsInternal) {
  TempDir dir;
  Model model = chain_model(1);
  model.graph.inline_initializers["chain.0.weight"] = TensorValue::int64_scalar(1);
  EXPECT_THROW(write_model(model, dir.path() / "model.onnx"), Error);
}

void expect_io_error(const std::function<void()>& action, const std::string& path_fragment) {
  try {
    action();
    FAIL() << "expected an I/O error";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ExitCode::kIo) << error.what();
    EXPECT_NE(std::string(error.what()).find(path_fragment), std::string::npos) << error.what();
  }
}

TEST(OnnxWriterErrors, MissingDirectoryThrowsIo) {
  TempDir dir;
  std::ofstream(dir.path() / "not_a_folder") << "x";
  const auto target = dir.path() / "not_a_folder" / "model.onnx";
  expect_io_error([&] { write_model(linear_model(), target); }, (dir.path() / "not_a_folder").string());
  EXPECT_EQ(list_names(dir.path()), std::vector<std::string>{"not_a_folder"});
}

// RLIMIT_FSIZE makes write(2) fail with EFBIG once a file would pass the
// limit, as a full disk fails with ENOSPC. The writer must report it and
// remove the data file it had started.
TEST(OnnxWriterErrors, FileSizeLimitThrowsIoAndCleansUp) {
  TempDir dir;
  Model model = chain_model(5);  // needs 4 * 4096 + 1024 bytes in one file
  std::filesystem::path target = dir.path() / "model.onnx";

  rlimit original{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &original), 0);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction previous {};
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &previous), 0);
  rlimit limited = original;
  limited.rlim_cur = 10000;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limited), 0);

  std::string message;
  ExitCode code = ExitCode::kSuccess;
  try {
    write_model(model, target);
  } catch (const Error& error) {
    message = error.what();
    code = error.code();
  }
  setrlimit(RLIMIT_FSIZE, &original);
  sigaction(SIGXFSZ, &previous, nullptr);

  EXPECT_EQ(code, ExitCode::kIo);
  EXPECT_NE(message.find("model.onnx_data"), std::string::npos) << message;
  EXPECT_NE(message.find(std::strerror(EFBIG)), std::string::npos) << message;
  EXPECT_TRUE(list_names(dir.path()).empty()) << "left behind: " << ::testing::PrintToString(list_names(dir.path()));
}

// Root ignores permission bits, so when the tests run as root the write
// happens in a child process that switches to the user nobody first.
TEST(OnnxWriterErrors, ReadOnlyDirectoryThrowsIo) {
  TempDir dir;
  const std::filesystem::path folder = dir.path() / "read_only";
  std::filesystem::create_directory(folder);
  std::filesystem::permissions(folder, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec |
                                           std::filesystem::perms::group_read | std::filesystem::perms::group_exec |
                                           std::filesystem::perms::others_read | std::filesystem::perms::others_exec);
  std::filesystem::permissions(dir.path(), std::filesystem::perms::owner_all | std::filesystem::perms::others_exec |
                                               std::filesystem::perms::group_exec);
  const std::filesystem::path target = folder / "model.onnx";
  const Model model = linear_model();

  // Child exit status: 0 kIo naming the path, 1 no error, 2 another error, 3 setuid failed.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
      _exit(3);
    }
    try {
      write_model(model, target);
    } catch (const Error& error) {
      bool names_path = std::string(error.what()).find(folder.string()) != std::string::npos;
      _exit(error.code() == ExitCode::kIo && names_path ? 0 : 2);
    } catch (...) {
      _exit(2);
    }
    _exit(1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "0 = kIo naming the path, 1 = no error, 2 = another error, 3 = setuid failed";
  EXPECT_TRUE(list_names(folder).empty());
}

}  // namespace
}  // namespace qwen2vl::onnx
