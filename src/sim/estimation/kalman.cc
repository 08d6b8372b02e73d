#include "sim/estimation/kalman.h"

#include <fmt/format.h>

#include <cmath>
#include <utility>

namespace doppel::sim::estimation {

using core::Result;
using core::Status;

namespace {

Status Dimension(const std::string& what) { return Status("SIM_ESTIMATION_DIMENSION", what); }

Status NonFinite(const std::string& what) {
  return Status("SIM_NON_FINITE", what + " has a NaN or infinite element");
}

bool Finite(const MatrixXd& m) { return m.allFinite(); }

// Symmetrized: rounding makes P drift from symmetry over thousands of updates.
MatrixXd Symmetric(const MatrixXd& m) { return 0.5 * (m + m.transpose()); }

}  // namespace

std::function<VectorXd(const VectorXd&, const VectorXd&, double)> DiscretizeOde(
    std::function<VectorXd(const VectorXd& x, const VectorXd& u)> rhs, double max_substep) {
  return [rhs = std::move(rhs), max_substep](const VectorXd& x0, const VectorXd& u, double dt) {
    const int n = std::max(1, static_cast<int>(std::ceil(dt / max_substep - 1e-9)));
    const double h = dt / n;
    VectorXd x = x0;
    for (int i = 0; i < n; ++i) {
      const VectorXd k1 = rhs(x, u);
      const VectorXd k2 = rhs(x + 0.5 * h * k1, u);
      const VectorXd k3 = rhs(x + 0.5 * h * k2, u);
      const VectorXd k4 = rhs(x + h * k3, u);
      x += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
    }
    return x;
  };
}

double KalmanFilter::StdDev(Eigen::Index i) const { return std::sqrt(std::max(0.0, p_(i, i))); }

Status KalmanFilter::Validate(const FilterModel& model, const VectorXd& x0, const MatrixXd& p0,
                              const MatrixXd& q, const MatrixXd& r) {
  if (!model.transition || !model.measurement) {
    return Status("SIM_ESTIMATION_MODEL", "the filter model needs a transition and a measurement");
  }
  const auto n = x0.size();
  if (n == 0) return Dimension("the initial state is empty");
  if (p0.rows() != n || p0.cols() != n) {
    return Dimension(fmt::format("the initial covariance is {}x{}, the state has {} elements",
                                 p0.rows(), p0.cols(), n));
  }
  if (q.rows() != n || q.cols() != n) {
    return Dimension(fmt::format("the process noise is {}x{}, the state has {} elements", q.rows(),
                                 q.cols(), n));
  }
  if (r.rows() == 0 || r.rows() != r.cols()) {
    return Dimension(fmt::format("the measurement noise is {}x{}, not square", r.rows(), r.cols()));
  }
  if (!Finite(x0)) return NonFinite("the initial state");
  if (!Finite(p0)) return NonFinite("the initial covariance");
  if (!Finite(q)) return NonFinite("the process noise");
  if (!Finite(r)) return NonFinite("the measurement noise");
  if (Eigen::LLT<MatrixXd>(Symmetric(r)).info() != Eigen::Success) {
    return Status("SIM_ESTIMATION_NOT_PD", "the measurement noise is not positive definite");
  }
  if (Eigen::LDLT<MatrixXd>(Symmetric(p0)).info() != Eigen::Success ||
      (p0.diagonal().array() < 0).any()) {
    return Status("SIM_ESTIMATION_NOT_PD", "the initial covariance is not positive semi-definite");
  }
  const VectorXd z = model.measurement(x0);
  if (z.size() != r.rows()) {
    return Dimension(
        fmt::format("the measurement function gives {} values, the measurement "
                    "noise is {}x{}",
                    z.size(), r.rows(), r.cols()));
  }
  return {};
}

Status KalmanFilter::CheckMeasurement(const VectorXd& z) const {
  if (z.size() != r_.rows()) {
    return Dimension(
        fmt::format("a measurement of {} values, the filter expects {}", z.size(), r_.rows()));
  }
  if (!Finite(z)) return NonFinite("the measurement");
  return {};
}

Result<Innovation> KalmanFilter::Correct(const VectorXd& z, const VectorXd& z_hat,
                                         const MatrixXd& s, const MatrixXd& cross,
                                         const MatrixXd* h) {
  Eigen::LDLT<MatrixXd> solve(Symmetric(s));
  if (solve.info() != Eigen::Success || !solve.isPositive()) {
    return Status("SIM_ESTIMATION_NOT_PD", "the innovation covariance is not positive definite");
  }
  Innovation out;
  out.residual = z - z_hat;
  out.covariance = s;
  out.nis = out.residual.dot(solve.solve(out.residual));
  // K = C S^-1, computed as (S^-1 C')' since S is symmetric.
  const MatrixXd gain = solve.solve(cross.transpose()).transpose();
  VectorXd x = x_ + gain * out.residual;
  MatrixXd p;
  if (h != nullptr) {  // Joseph form
    const auto n = x_.size();
    const MatrixXd a = MatrixXd::Identity(n, n) - gain * *h;
    p = a * p_ * a.transpose() + gain * r_ * gain.transpose();
  } else {
    p = p_ - gain * s * gain.transpose();
  }
  p = Symmetric(p);
  if (!Finite(x) || !Finite(p) || !std::isfinite(out.nis)) return NonFinite("the updated estimate");
  x_ = std::move(x);
  p_ = std::move(p);
  return out;
}

// ---------------------------------------------------------------------------------------------
// EKF

Result<std::unique_ptr<ExtendedKalmanFilter>> ExtendedKalmanFilter::Create(FilterModel model,
                                                                           VectorXd x0, MatrixXd p0,
                                                                           MatrixXd q, MatrixXd r) {
  if (Status s = Validate(model, x0, p0, q, r); !s.ok()) return s;
  return std::unique_ptr<ExtendedKalmanFilter>(new ExtendedKalmanFilter(  // NOLINT: private ctor
      std::move(model), std::move(x0), std::move(p0), std::move(q), std::move(r)));
}

namespace {

// d f / d x at x by central differences; f maps R^n to R^m.
MatrixXd Jacobian(const std::function<VectorXd(const VectorXd&)>& f, const VectorXd& x,
                  Eigen::Index m) {
  const auto n = x.size();
  MatrixXd j(m, n);
  VectorXd xp = x, xm = x;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double h = 1e-6 * std::max(1.0, std::abs(x(i)));
    xp(i) = x(i) + h;
    xm(i) = x(i) - h;
    j.col(i) = (f(xp) - f(xm)) / (2 * h);
    xp(i) = x(i);
    xm(i) = x(i);
  }
  return j;
}

}  // namespace

Status ExtendedKalmanFilter::Predict(const VectorXd& u, double dt) {
  if (!(dt > 0) || !std::isfinite(dt)) {
    return Status("SIM_ESTIMATION_DIMENSION", fmt::format("the time step {} is not positive", dt));
  }
  if (!Finite(u)) return NonFinite("the input");
  auto f = [&](const VectorXd& x) { return model_.transition(x, u, dt); };
  const VectorXd x = f(x_);
  if (x.size() != x_.size()) {
    return Dimension(
        fmt::format("the transition gives {} values, the state has {}", x.size(), x_.size()));
  }
  const MatrixXd a = Jacobian(f, x_, x_.size());
  MatrixXd p = Symmetric(a * p_ * a.transpose() + q_ * dt);
  if (!Finite(x) || !Finite(p)) return NonFinite("the predicted estimate");
  x_ = x;
  p_ = std::move(p);
  return {};
}

Result<Innovation> ExtendedKalmanFilter::Update(const VectorXd& z) {
  if (Status s = CheckMeasurement(z); !s.ok()) return s;
  const VectorXd z_hat = model_.measurement(x_);
  const MatrixXd h = Jacobian(model_.measurement, x_, r_.rows());
  const MatrixXd cross = p_ * h.transpose();
  return Correct(z, z_hat, h * cross + r_, cross, &h);
}

// ---------------------------------------------------------------------------------------------
// UKF

Result<std::unique_ptr<UnscentedKalmanFilter>> UnscentedKalmanFilter::Create(
    FilterModel model, VectorXd x0, MatrixXd p0, MatrixXd q, MatrixXd r) {
  if (Status s = Validate(model, x0, p0, q, r); !s.ok()) return s;
  return std::unique_ptr<UnscentedKalmanFilter>(new UnscentedKalmanFilter(  // NOLINT: private ctor
      std::move(model), std::move(x0), std::move(p0), std::move(q), std::move(r)));
}

Result<MatrixXd> UnscentedKalmanFilter::SigmaPoints() const {
  const auto n = x_.size();
  Eigen::LLT<MatrixXd> llt(static_cast<double>(n) * p_);
  if (llt.info() != Eigen::Success) {
    return Status("SIM_ESTIMATION_NOT_PD", "the state covariance is not positive definite");
  }
  const MatrixXd l = llt.matrixL();
  MatrixXd pts(n, 2 * n);
  for (Eigen::Index i = 0; i < n; ++i) {
    pts.col(i) = x_ + l.col(i);
    pts.col(n + i) = x_ - l.col(i);
  }
  return pts;
}

namespace {

// Mean and covariance of the columns (equal weights).
std::pair<VectorXd, MatrixXd> Moments(const MatrixXd& cols) {
  const VectorXd mean = cols.rowwise().mean();
  const MatrixXd d = cols.colwise() - mean;
  return {mean, d * d.transpose() / static_cast<double>(cols.cols())};
}

}  // namespace

Status UnscentedKalmanFilter::Predict(const VectorXd& u, double dt) {
  if (!(dt > 0) || !std::isfinite(dt)) {
    return Status("SIM_ESTIMATION_DIMENSION", fmt::format("the time step {} is not positive", dt));
  }
  if (!Finite(u)) return NonFinite("the input");
  auto pts = SigmaPoints();
  if (!pts.ok()) return pts.status();
  MatrixXd moved(x_.size(), pts->cols());
  for (Eigen::Index i = 0; i < pts->cols(); ++i) {
    VectorXd y = model_.transition(pts->col(i), u, dt);
    if (y.size() != x_.size()) {
      return Dimension(
          fmt::format("the transition gives {} values, the state has {}", y.size(), x_.size()));
    }
    moved.col(i) = y;
  }
  auto [x, p] = Moments(moved);
  p = Symmetric(p + q_ * dt);
  if (!Finite(x) || !Finite(p)) return NonFinite("the predicted estimate");
  x_ = std::move(x);
  p_ = std::move(p);
  return {};
}

Result<Innovation> UnscentedKalmanFilter::Update(const VectorXd& z) {
  if (Status s = CheckMeasurement(z); !s.ok()) return s;
  auto pts = SigmaPoints();
  if (!pts.ok()) return pts.status();
  MatrixXd zs(r_.rows(), pts->cols());
  for (Eigen::Index i = 0; i < pts->cols(); ++i) zs.col(i) = model_.measurement(pts->col(i));
  auto [z_hat, s] = Moments(zs);
  const MatrixXd cross = ((*pts).colwise() - x_) * (zs.colwise() - z_hat).transpose() /
                         static_cast<double>(pts->cols());
  return Correct(z, z_hat, s + r_, cross, nullptr);
}

}  // namespace doppel::sim::estimation
