// The Kalman filters against a simulated machine whose cooling degrades: they must recover the
// drifting heat-transfer coefficient from noisy temperature telemetry, with an uncertainty that
// covers the truth, and refuse bad input without changing their estimate.
#include "sim/estimation/kalman.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace doppel::sim::estimation {
namespace {

// A motor housing: C dT/dt = P - h (T - T_amb). P (W) is the input, T (°C) is measured, h (W/K)
// is the cooling that fouls over time. State for the filter: [T, h].
constexpr double kHeatCapacity = 5000;  // J/K
constexpr double kAmbient = 20;         // °C
constexpr double kNoise = 0.2;          // K, telemetry standard deviation
constexpr double kDt = 10;              // s between readings

VectorXd Rhs(const VectorXd& x, const VectorXd& u) {
  VectorXd d(2);
  d << (u(0) - x(1) * (x(0) - kAmbient)) / kHeatCapacity, 0.0;
  return d;
}

FilterModel ThermalModel() {
  FilterModel m;
  m.transition = DiscretizeOde(Rhs, 1.0);
  m.measurement = [](const VectorXd& x) { return VectorXd::Constant(1, x(0)); };
  return m;
}

struct Run {
  double final_h_error = 0, final_h_std = 0;
  double covered = 0;   // share of the last half where |h error| <= 2 sigma
  double t_rmse = 0;    // filtered temperature vs truth, last half
  double mean_nis = 0;  // should be about 1 (one measurement)
};

template <typename Filter>
Run Track(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, kNoise);
  // Truth: h drifts linearly from 10 to 7 W/K over 8 hours; the load steps every 15 minutes.
  const int steps = 8 * 3600 / static_cast<int>(kDt);
  double t_true = 60;
  VectorXd x0(2);
  x0 << 55, 12;  // a wrong guess of h
  MatrixXd p0 = MatrixXd::Zero(2, 2);
  p0(0, 0) = 4;
  p0(1, 1) = 9;
  MatrixXd q = MatrixXd::Zero(2, 2);
  q(0, 0) = 1e-4;  // K^2/s: model error in the temperature
  // (W/K)^2/s: how fast h may move. The truth drifts 1e-4 W/K per second; a random walk this
  // loose follows the ramp with a lag inside its stated uncertainty (1e-6 lags ~2 sigma behind).
  q(1, 1) = 3e-6;
  MatrixXd r = MatrixXd::Constant(1, 1, kNoise * kNoise);
  auto filter = Filter::Create(ThermalModel(), x0, p0, q, r);
  EXPECT_TRUE(filter.ok()) << filter.status().ToString();
  if (!filter.ok()) return {};
  Run out;
  int half = 0, covered = 0, nis_n = 0;
  double se = 0, nis = 0;
  for (int k = 1; k <= steps; ++k) {
    const double t = k * kDt;
    const double h_true = 10 - 3 * t / (8 * 3600);
    VectorXd u = VectorXd::Constant(1, (k / 90) % 2 == 0 ? 600.0 : 1400.0);
    // Truth with a finer step than the filter's model.
    for (int i = 0; i < 100; ++i) {
      t_true += kDt / 100 * (u(0) - h_true * (t_true - kAmbient)) / kHeatCapacity;
    }
    EXPECT_TRUE((*filter)->Predict(u, kDt).ok());
    auto innov = (*filter)->Update(VectorXd::Constant(1, t_true + noise(rng)));
    EXPECT_TRUE(innov.ok()) << innov.status().ToString();
    if (!innov.ok()) return out;
    if (k > steps / 2) {
      ++half;
      const double err = (*filter)->mean()(1) - h_true;
      if (std::abs(err) <= 2 * (*filter)->StdDev(1)) ++covered;
      se += std::pow((*filter)->mean()(0) - t_true, 2);
      nis += innov->nis;
      ++nis_n;
    }
    if (k == steps) {
      out.final_h_error = (*filter)->mean()(1) - h_true;
      out.final_h_std = (*filter)->StdDev(1);
    }
  }
  out.covered = static_cast<double>(covered) / half;
  out.t_rmse = std::sqrt(se / half);
  out.mean_nis = nis / nis_n;
  return out;
}

template <typename Filter>
void ExpectRecoversDrift() {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    const Run r = Track<Filter>(seed);
    SCOPED_TRACE(seed);
    // The coefficient at the end (7 W/K, from a first guess of 12) within 0.1 W/K (1.4%), and
    // inside 3 sigma.
    EXPECT_LT(std::abs(r.final_h_error), 0.1);
    EXPECT_LT(std::abs(r.final_h_error), 3 * r.final_h_std);
    EXPECT_LT(r.final_h_std, 0.1);
    // The stated uncertainty covers the truth most of the time (nominal 95% for 2 sigma).
    EXPECT_GT(r.covered, 0.8);
    // Filtering beats the raw telemetry.
    EXPECT_LT(r.t_rmse, kNoise);
    // Consistent noise settings: NIS averages about the measurement size (1).
    EXPECT_GT(r.mean_nis, 0.7);
    EXPECT_LT(r.mean_nis, 1.4);
  }
}

TEST(KalmanTest, ExtendedFilterRecoversADriftingCoolingCoefficient) {
  ExpectRecoversDrift<ExtendedKalmanFilter>();
}

TEST(KalmanTest, UnscentedFilterRecoversADriftingCoolingCoefficient) {
  ExpectRecoversDrift<UnscentedKalmanFilter>();
}

TEST(KalmanTest, LinearModelMatchesTheClosedFormKalmanFilter) {
  // Random walk x, measured directly: the filters must give the scalar Kalman recursion.
  FilterModel m;
  m.transition = [](const VectorXd& x, const VectorXd&, double) { return x; };
  m.measurement = [](const VectorXd& x) { return x; };
  const double q = 0.5, r = 2.0;
  auto ekf = ExtendedKalmanFilter::Create(m, VectorXd::Zero(1), MatrixXd::Constant(1, 1, 1),
                                          MatrixXd::Constant(1, 1, q), MatrixXd::Constant(1, 1, r));
  auto ukf =
      UnscentedKalmanFilter::Create(m, VectorXd::Zero(1), MatrixXd::Constant(1, 1, 1),
                                    MatrixXd::Constant(1, 1, q), MatrixXd::Constant(1, 1, r));
  ASSERT_TRUE(ekf.ok() && ukf.ok());
  double x = 0, p = 1;
  const double zs[] = {1.0, 0.5, 2.0, -1.0, 3.0};
  for (double z : zs) {
    p += q * 2.0;  // dt = 2
    const double k = p / (p + r);
    x += k * (z - x);
    p *= 1 - k;
    for (KalmanFilter* f :
         {static_cast<KalmanFilter*>(ekf->get()), static_cast<KalmanFilter*>(ukf->get())}) {
      ASSERT_TRUE(f->Predict(VectorXd::Zero(0), 2.0).ok());
      ASSERT_TRUE(f->Update(VectorXd::Constant(1, z)).ok());
      EXPECT_NEAR(f->mean()(0), x, 1e-9);
      EXPECT_NEAR(f->covariance()(0, 0), p, 1e-9);
    }
  }
}

TEST(KalmanTest, BadInputIsRefusedAndChangesNothing) {
  const MatrixXd p0 = MatrixXd::Identity(2, 2);
  const MatrixXd q = MatrixXd::Identity(2, 2) * 1e-6;
  const MatrixXd r = MatrixXd::Constant(1, 1, 0.04);
  VectorXd x0(2);
  x0 << 50, 10;
  // Wrong sizes.
  auto bad = ExtendedKalmanFilter::Create(ThermalModel(), x0, MatrixXd::Identity(3, 3), q, r);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "SIM_ESTIMATION_DIMENSION");
  auto bad_r = UnscentedKalmanFilter::Create(ThermalModel(), x0, p0, q, MatrixXd::Identity(2, 2));
  ASSERT_FALSE(bad_r.ok());
  EXPECT_EQ(bad_r.status().code(), "SIM_ESTIMATION_DIMENSION");
  // Not positive definite, not finite.
  auto neg = ExtendedKalmanFilter::Create(ThermalModel(), x0, p0, q, MatrixXd::Constant(1, 1, -1));
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ(neg.status().code(), "SIM_ESTIMATION_NOT_PD");
  VectorXd nan_x0 = x0;
  nan_x0(1) = std::nan("");
  auto nan = ExtendedKalmanFilter::Create(ThermalModel(), nan_x0, p0, q, r);
  ASSERT_FALSE(nan.ok());
  EXPECT_EQ(nan.status().code(), "SIM_NON_FINITE");

  auto ekf = ExtendedKalmanFilter::Create(ThermalModel(), x0, p0, q, r);
  auto ukf = UnscentedKalmanFilter::Create(ThermalModel(), x0, p0, q, r);
  ASSERT_TRUE(ekf.ok() && ukf.ok());
  for (KalmanFilter* f :
       {static_cast<KalmanFilter*>(ekf->get()), static_cast<KalmanFilter*>(ukf->get())}) {
    const VectorXd before = f->mean();
    const MatrixXd p_before = f->covariance();
    auto s = f->Update(VectorXd::Constant(1, std::nan("")));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), "SIM_NON_FINITE");
    s = f->Update(VectorXd::Zero(2));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), "SIM_ESTIMATION_DIMENSION");
    EXPECT_EQ(f->Predict(VectorXd::Constant(1, INFINITY), kDt).code(), "SIM_NON_FINITE");
    EXPECT_EQ(f->Predict(VectorXd::Constant(1, 100), 0).code(), "SIM_ESTIMATION_DIMENSION");
    EXPECT_EQ(f->mean(), before);
    EXPECT_EQ(f->covariance(), p_before);
  }
}

}  // namespace
}  // namespace doppel::sim::estimation
