#pragma once

#include <postern/host.hpp>

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace postern::telemetry {

/// In-process metrics: counters and histograms keyed by name and labels. Thread-safe.
/// Exported later over HTTP in Prometheus text format; `snapshot_text` renders that format.
class registry final : public postern::metrics {
 public:
  void add(std::string_view name, double value, const metric_labels& labels = {}) override;
  void observe(std::string_view name, double value, const metric_labels& labels = {}) override;

  /// Current value of a counter (0 if never added to).
  double counter(std::string_view name, const metric_labels& labels = {}) const;
  /// Number of observations of a histogram.
  std::uint64_t observations(std::string_view name, const metric_labels& labels = {}) const;
  /// Prometheus text exposition of everything recorded.
  std::string snapshot_text() const;

 private:
  struct histogram {
    std::vector<std::uint64_t> buckets;  // cumulative counts per bound in bounds()
    std::uint64_t count = 0;
    double sum = 0;
  };
  static std::string key(std::string_view name, const metric_labels& labels);
  static const std::vector<double>& bounds();

  mutable std::mutex mutex_;
  std::map<std::string, double> counters_;
  std::map<std::string, histogram> histograms_;
};

}  // namespace postern::telemetry
