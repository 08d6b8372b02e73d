// doppel::sim::estimation — state estimation: extended and unscented Kalman filters that keep a
// model aligned with a twin's telemetry, estimating the states nobody measures and parameters
// that drift (by putting them in the state as random walks), each with its uncertainty.
//
// The model is discrete in time: x_{k+1} = f(x_k, u_k, dt) + w, z_k = h(x_k) + v, with w ~ N(0,
// Q dt) (Q: process noise per second, so the filter is right whatever the telemetry interval) and
// v ~ N(0, R). A continuous model dx/dt = g(x, u) becomes f through DiscretizeOde (classic RK4
// with substeps). A drifting parameter p is a state with dp/dt = 0 and a variance per second in
// Q that says how fast it may move.
//
//   FilterModel m;  m.transition = DiscretizeOde(rhs, 0.5);  m.measurement = ...;
//   auto ekf = ExtendedKalmanFilter::Create(m, x0, P0, Q, R);
//   for each reading: ekf->Predict(u, dt); auto innov = ekf->Update(z);
//   ekf->mean()[1], ekf->StdDev(1)        // the estimated parameter, its standard deviation
//
// EKF: Jacobians by central differences (step 1e-6 * max(1, |x_i|)); covariance update in
// Joseph form (stays symmetric positive semi-definite under rounding). UKF: 2n symmetric sigma
// points ±sqrt(n P) (alpha 1, kappa 0: every weight 1/(2n), none negative, so the predicted
// covariance is a sum of squares), Cholesky of P; better than the EKF when f or h bends within
// the uncertainty. Both report the normalized innovation squared (NIS), which averages the
// measurement size when the noise settings are right: a filter whose NIS runs high is
// overconfident.
//
// Errors (stable codes): SIM_ESTIMATION_DIMENSION (a vector or matrix of the wrong size, named),
// SIM_NON_FINITE (a non-finite input, measurement or result: nothing is changed),
// SIM_ESTIMATION_NOT_PD (a covariance that is not positive definite where it must be: the filter
// keeps its previous estimate).
#pragma once

#include <Eigen/Dense>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace doppel::sim::estimation {

using Eigen::MatrixXd;
using Eigen::VectorXd;

struct FilterModel {
  // x_{k+1} = transition(x_k, u_k, dt). Must return a vector of the state's size.
  std::function<VectorXd(const VectorXd& x, const VectorXd& u, double dt)> transition;
  // z_k = measurement(x_k). Must return a vector of R's size.
  std::function<VectorXd(const VectorXd& x)> measurement;
};

// dx/dt = rhs(x, u), integrated over dt with classic RK4 in substeps no longer than max_substep
// seconds (u held constant over the step).
std::function<VectorXd(const VectorXd&, const VectorXd&, double)> DiscretizeOde(
    std::function<VectorXd(const VectorXd& x, const VectorXd& u)> rhs, double max_substep);

// What one Update saw: the innovation (measurement minus prediction), its covariance S, and
// NIS = innovation' S^-1 innovation.
struct Innovation {
  VectorXd residual;
  MatrixXd covariance;
  double nis = 0;
};

class KalmanFilter {
 public:
  virtual ~KalmanFilter() = default;
  // Advances the estimate by dt seconds (dt > 0) with input u.
  virtual core::Status Predict(const VectorXd& u, double dt) = 0;
  // Folds in a measurement z (size of R).
  virtual core::Result<Innovation> Update(const VectorXd& z) = 0;

  const VectorXd& mean() const { return x_; }
  const MatrixXd& covariance() const { return p_; }
  double StdDev(Eigen::Index i) const;

 protected:
  KalmanFilter(FilterModel model, VectorXd x0, MatrixXd p0, MatrixXd q, MatrixXd r)
      : model_(std::move(model)),
        x_(std::move(x0)),
        p_(std::move(p0)),
        q_(std::move(q)),
        r_(std::move(r)) {}
  // Checks sizes and finiteness of everything Create was given.
  static core::Status Validate(const FilterModel& model, const VectorXd& x0, const MatrixXd& p0,
                               const MatrixXd& q, const MatrixXd& r);
  // The update shared by both filters once the predicted measurement z_hat, its covariance S
  // (with R) and the cross-covariance C = cov(x, z) are known.
  core::Result<Innovation> Correct(const VectorXd& z, const VectorXd& z_hat, const MatrixXd& s,
                                   const MatrixXd& cross, const MatrixXd* h);
  core::Status CheckMeasurement(const VectorXd& z) const;

  FilterModel model_;
  VectorXd x_;
  MatrixXd p_;
  MatrixXd q_;  // per second
  MatrixXd r_;
};

class ExtendedKalmanFilter : public KalmanFilter {
 public:
  static core::Result<std::unique_ptr<ExtendedKalmanFilter>> Create(FilterModel model, VectorXd x0,
                                                                    MatrixXd p0, MatrixXd q,
                                                                    MatrixXd r);
  core::Status Predict(const VectorXd& u, double dt) override;
  core::Result<Innovation> Update(const VectorXd& z) override;

 private:
  using KalmanFilter::KalmanFilter;
};

class UnscentedKalmanFilter : public KalmanFilter {
 public:
  static core::Result<std::unique_ptr<UnscentedKalmanFilter>> Create(FilterModel model, VectorXd x0,
                                                                     MatrixXd p0, MatrixXd q,
                                                                     MatrixXd r);
  core::Status Predict(const VectorXd& u, double dt) override;
  core::Result<Innovation> Update(const VectorXd& z) override;

 private:
  using KalmanFilter::KalmanFilter;
  // The 2n sigma points of (x_, p_) as columns; SIM_ESTIMATION_NOT_PD when P has no Cholesky.
  core::Result<MatrixXd> SigmaPoints() const;
};

}  // namespace doppel::sim::estimation
