#include "telemetry/registry.hpp"

#include <sstream>

namespace postern::telemetry {

std::string registry::key(std::string_view name, const metric_labels& labels) {
  std::string k(name);
  if (labels.empty()) return k;
  k += '{';
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i) k += ',';
    k += labels[i].first + "=\"" + labels[i].second + '"';
  }
  return k + '}';
}

const std::vector<double>& registry::bounds() {
  // Seconds: from a fast fsync to a slow remote relay.
  static const std::vector<double> b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10, 30};
  return b;
}

void registry::add(std::string_view name, double value, const metric_labels& labels) {
  std::lock_guard lock(mutex_);
  counters_[key(name, labels)] += value;
}

void registry::observe(std::string_view name, double value, const metric_labels& labels) {
  std::lock_guard lock(mutex_);
  auto& h = histograms_[key(name, labels)];
  if (h.buckets.empty()) h.buckets.assign(bounds().size(), 0);
  for (std::size_t i = 0; i < bounds().size(); ++i) {
    if (value <= bounds()[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += value;
}

double registry::counter(std::string_view name, const metric_labels& labels) const {
  std::lock_guard lock(mutex_);
  auto it = counters_.find(key(name, labels));
  return it == counters_.end() ? 0 : it->second;
}

std::uint64_t registry::observations(std::string_view name, const metric_labels& labels) const {
  std::lock_guard lock(mutex_);
  auto it = histograms_.find(key(name, labels));
  return it == histograms_.end() ? 0 : it->second.count;
}

std::string registry::snapshot_text() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  for (const auto& [k, v] : counters_) out << k << ' ' << v << '\n';
  for (const auto& [k, h] : histograms_) {
    auto brace = k.find('{');
    std::string name = k.substr(0, brace);
    std::string labels = brace == std::string::npos ? "" : k.substr(brace + 1, k.size() - brace - 2);
    std::string sep = labels.empty() ? "" : ",";
    for (std::size_t i = 0; i < bounds().size(); ++i)
      out << name << "_bucket{" << labels << sep << "le=\"" << bounds()[i] << "\"} " << h.buckets[i] << '\n';
    out << name << "_bucket{" << labels << sep << "le=\"+Inf\"} " << h.count << '\n';
    out << name << "_sum" << (labels.empty() ? "" : "{" + labels + "}") << ' ' << h.sum << '\n';
    out << name << "_count" << (labels.empty() ? "" : "{" + labels + "}") << ' ' << h.count << '\n';
  }
  return out.str();
}

}  // namespace postern::telemetry
