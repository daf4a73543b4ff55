// A host that loads a TorchScript file the way nn~'s Backend does (acids-ircam/nn_tilde,
// src/backend/backend.cpp: load, get_available_methods, get_method_params, perform,
// get_settable_attributes, get_attribute, set_attribute) and runs it block by block.
//
// usage: nn_host MODEL.ts IN.f32 OUTDIR BLOCK HOST_SR THREADS [name=value ...]
//   IN.f32   mono float32 samples (native endianness)
//   OUTDIR   gets <method>_zeros.f32 and <method>.f32 (the method on zeros and on IN fed in
//            BLOCK-sample buffers; decode is fed encode's output, as an encode -> decode patch)
//   name=value  set_<name>(value) on each float attribute before running
// Prints one line per fact, "key value ...", for the Python test to read; per-call times in
// "time <method> <wall seconds> <thread CPU seconds>" lines. Exit status 0 when every step
// did what nn~ requires.

#include <torch/script.h>
#include <torch/torch.h>

#include <time.h>

#include <chrono>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using Module = torch::jit::script::Module;

double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

std::vector<std::string> available_methods(Module &model) {
  // as Backend::get_available_methods: get_methods(), else every method with a _params buffer
  std::vector<std::string> methods;
  try {
    auto listed = model.get_method("get_methods")(std::vector<c10::IValue>{}).toList();
    for (size_t i = 0; i < listed.size(); i++) methods.push_back(listed.get(i).toStringRef());
  } catch (...) {
    for (const auto &m : model.get_methods()) {
      try {
        model.attr(m.name() + "_params");
        methods.push_back(m.name());
      } catch (...) {
      }
    }
  }
  return methods;
}

std::vector<int> method_params(Module &model, const std::string &method) {
  // as Backend::get_method_params
  std::vector<int> params;
  auto p = model.attr(method + "_params").toTensor();
  for (int i = 0; i < 4; i++) params.push_back(p[i].item().to<int>());
  return params;
}

std::vector<std::string> settable_attributes(Module &model) {
  std::vector<std::string> names;
  auto listed = model.get_method("get_attributes")(std::vector<c10::IValue>{}).toList();
  for (size_t i = 0; i < listed.size(); i++) {
    auto name = listed.get(i).toStringRef();
    if (name != "none") names.push_back(name);
  }
  return names;
}

std::vector<c10::IValue> get_attribute(Module &model, const std::string &name) {
  // as Backend::get_attribute: the getter returns a list, else a tuple
  auto getter = model.get_method("get_" + name);
  auto out = getter(std::vector<c10::IValue>{});
  if (out.isList()) return out.toList().vec();
  return out.toTuple()->elements().vec();
}

void set_attribute(Module &model, const std::string &name, const std::string &value) {
  // as Backend::set_attribute for one float argument (type id 2); the setter returns 0
  auto params = model.attr(name + "_params").toTensor();
  if (params.numel() != 1 || params[0].item().toInt() != 2)
    throw std::runtime_error("attribute " + name + " is not one float");
  std::vector<c10::IValue> args = {c10::IValue(std::stod(value))};
  auto result = model.get_method("set_" + name)(args).toInt();
  if (result != 0) throw std::runtime_error("setter for " + name + " returned " +
                                            std::to_string(result));
}

// Backend::perform for one batch: in_dim channels of n_vec samples -> out_dim channels.
bool perform(Module &model, const std::string &method, const std::vector<int> &params,
             std::vector<std::vector<float>> &in, std::vector<std::vector<float>> &out,
             int n_vec, double *seconds, double *cpu_seconds) {
  c10::InferenceMode guard;
  int in_dim = params[0], in_ratio = params[1], out_dim = params[2], out_ratio = params[3];
  int n_batches = 1;
  std::vector<at::Tensor> tensor_in;
  for (int i = 0; i < in_dim * n_batches; i++) {
    if (i < (int)in.size())
      tensor_in.push_back(torch::from_blob(in[i].data(), {1, 1, n_vec}).clone());
    else
      tensor_in.push_back(torch::zeros({1, 1, n_vec}));
  }
  auto x = torch::cat(tensor_in, 1);
  x = x.reshape({in_dim, n_batches, -1, in_ratio});
  x = x.select(-1, -1);
  x = x.permute({1, 0, 2});
  std::vector<torch::jit::IValue> inputs = {x};
  at::Tensor y;
  auto t0 = std::chrono::steady_clock::now();
  double c0 = thread_cpu_seconds();
  try {
    y = model.get_method(method)(inputs).toTensor();
    y = y.repeat_interleave(out_ratio).reshape({n_batches, out_dim, -1});
  } catch (const std::exception &e) {
    std::cerr << e.what() << '\n';
    return false;
  }
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  *cpu_seconds = thread_cpu_seconds() - c0;  // one thread: the work runs in this one
  if (y.size(2) != n_vec) {
    std::cout << "error " << method << " returned " << y.size(2) << " samples for " << n_vec
              << "\n";
    return false;
  }
  y = y.to(torch::kCPU).contiguous();
  out.assign(out_dim, std::vector<float>(n_vec));
  for (int i = 0; i < out_dim; i++) {
    auto row = y.index({0, i}).contiguous();
    std::memcpy(out[i].data(), row.data_ptr<float>(), n_vec * sizeof(float));
  }
  return true;
}

// Feed `channels` (each `total` samples) through `method` in `block`-sample buffers.
bool run(Module &model, const std::string &method, const std::vector<int> &params,
         const std::vector<std::vector<float>> &channels, size_t total, int block,
         std::vector<std::vector<float>> &result) {
  result.assign(params[2], {});
  for (size_t start = 0; start + block <= total; start += block) {
    std::vector<std::vector<float>> in, out;
    for (const auto &c : channels) in.emplace_back(c.begin() + start, c.begin() + start + block);
    double seconds = 0, cpu_seconds = 0;
    if (!perform(model, method, params, in, out, block, &seconds, &cpu_seconds)) return false;
    std::printf("time %s %.9f %.9f\n", method.c_str(), seconds, cpu_seconds);
    for (int i = 0; i < params[2]; i++)
      result[i].insert(result[i].end(), out[i].begin(), out[i].end());
  }
  return true;
}

void write(const std::string &path, const std::vector<std::vector<float>> &channels) {
  std::ofstream f(path, std::ios::binary);
  for (const auto &c : channels)  // channel after channel
    f.write(reinterpret_cast<const char *>(c.data()), c.size() * sizeof(float));
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 7) {
    std::cerr << "usage: nn_host MODEL.ts IN.f32 OUTDIR BLOCK HOST_SR THREADS [name=value ...]\n";
    return 2;
  }
  std::string path = argv[1], in_path = argv[2], outdir = argv[3];
  int block = std::stoi(argv[4]);
  int host_sr = std::stoi(argv[5]);
  at::set_num_threads(std::stoi(argv[6]));

  Module model;
  std::unordered_map<std::string, std::string> extra = {{"sda_lab.json", ""}};
  try {
    model = torch::jit::load(path, c10::nullopt, extra);
  } catch (const std::exception &e) {
    std::cout << "error load " << e.what() << "\n";
    return 1;
  }
  model.eval();
  std::cout << "metadata sda_lab.json " << extra["sda_lab.json"].size() << "\n";

  // Backend::set_sample_rate: called on load when the model has the method
  for (const auto &m : model.get_methods()) {
    if (m.name() != "set_sample_rate") continue;
    try {
      std::vector<c10::IValue> args = {host_sr};
      model.get_method("set_sample_rate")(args);
      std::cout << "sample_rate accepted " << host_sr << "\n";
    } catch (const std::exception &e) {
      std::string what = e.what();
      auto cut = what.find("ValueError: ");
      std::cout << "sample_rate refused "
                << (cut == std::string::npos ? what : what.substr(cut + 12)) << "\n";
      return 3;
    }
  }

  auto methods = available_methods(model);
  std::unordered_map<std::string, std::vector<int>> params;
  for (const auto &m : methods) {
    params[m] = method_params(model, m);
    auto &p = params[m];
    std::cout << "method " << m << " " << p[0] << " " << p[1] << " " << p[2] << " " << p[3]
              << "\n";
    try {
      std::cout << "latency " << m << " " << model.attr(m + "_latency").toInt() << "\n";
    } catch (...) {
    }
  }
  for (int i = 7; i < argc; i++) {
    std::string arg = argv[i];
    auto eq = arg.find('=');
    set_attribute(model, arg.substr(0, eq), arg.substr(eq + 1));
  }
  for (const auto &name : settable_attributes(model)) {
    auto values = get_attribute(model, name);
    std::cout << "attribute " << name << " " << values.at(0).toDouble() << "\n";
  }

  std::vector<float> audio;
  {
    std::ifstream f(in_path, std::ios::binary | std::ios::ate);
    audio.resize(f.tellg() / sizeof(float));
    f.seekg(0);
    f.read(reinterpret_cast<char *>(audio.data()), audio.size() * sizeof(float));
  }
  size_t total = audio.size() - audio.size() % block;
  bool ok = true;
  // every method on silence first (nn~'s own registration test feeds zeros), then the file
  for (const auto &m : methods) {
    auto &p = params[m];
    std::vector<std::vector<float>> zeros(p[0], std::vector<float>(block * 2, 0.0f)), out;
    ok = ok && run(model, m, p, zeros, block * 2, block, out);
    write(outdir + "/" + m + "_zeros.f32", out);
  }
  try {  // each method's state starts afresh for the file
    model.get_method("reset")(std::vector<c10::IValue>{});
  } catch (...) {
  }
  std::vector<std::vector<float>> latents;
  for (const auto &m : {std::string("forward"), std::string("encode")}) {
    if (!params.count(m)) continue;
    std::vector<std::vector<float>> out;
    ok = ok && run(model, m, params[m], {audio}, total, block, out);
    write(outdir + "/" + m + ".f32", out);
    if (m == "encode") latents = out;
  }
  if (params.count("decode") && !latents.empty()) {
    std::vector<std::vector<float>> out;
    ok = ok && run(model, "decode", params["decode"], latents, total, block, out);
    write(outdir + "/decode.f32", out);
  }
  std::cout << (ok ? "done" : "failed") << "\n";
  return ok ? 0 : 1;
}
