# Reference values for analysis.montecarlo.lavaan_population (tests/test_montecarlo.py):
# the implied moments of a population model as lavaan::simulateData builds them.
# For each model: fit <- attr(simulateData(model, sample.nobs = 100, return.fit = TRUE,
#   standardized = s), "fit"); lavInspect(fit, "implied") (cov and, with ~ 1, mean).
# default_study: the default study's population (params.yaml simulate:), PopulationModel.to_lavaan(),
# written into montecarlo_default_population.lavaan by
#   analysis.simulate.population_model(load_instrument('instrument/sustainability_gap.yaml'),
#   parse_simulation_params(params['simulate']), None).to_lavaan()
# Run: Rscript montecarlo_population.R  (writes montecarlo_population.json beside it)
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
models <- list(
  cfa_path = list(standardized = FALSE, model = "
f =~ 0.7*x1 + 0.6*x2 + x3
y ~ 0.3*f + 0.2*z
x1 ~~ 0.5*x1
"),
  chain_standardized = list(standardized = TRUE, model = "
f1 =~ 0.8*a1 + 0.7*a2 + a3
f2 =~ 0.6*b1 + 0.7*b2 + 0.8*b3
f3 =~ 0.7*c1 + 0.7*c2 + 0.5*c3
f2 ~ 0.4*f1
f3 ~ 0.3*f2 + 0.2*f1
c3 ~ 0.25*w
"),
  means_covariances = list(standardized = FALSE, model = "
f =~ 1*x1 + 0.8*x2 + 0.6*x3 + 0.9*x4
g =~ 1*y1 + 1.2*y2 + 0.7*y3
g ~ 0.5*f
f ~~ 2*f
g ~~ 0.75*g
x1 ~~ 0.3*x2
x1 ~~ 0.6*x1
y2 ~~ 0.4*y2
x1 ~ 2*1
y3 ~ -1*1
f ~ 0.5*1
")
,
  default_study = list(standardized = FALSE,
                       model = paste(readLines("montecarlo_default_population.lavaan"), collapse = "\n"))
)
out <- list(lavaan = as.character(packageVersion("lavaan")), models = list())
for (name in names(models)) {
  m <- models[[name]]
  d <- suppressWarnings(simulateData(m$model, sample.nobs = 100, return.fit = TRUE,
                                     standardized = m$standardized))
  fit <- attr(d, "fit")
  imp <- lavInspect(fit, "implied")
  ov <- lavNames(fit, "ov")
  out$models[[name]] <- list(model = m$model, standardized = m$standardized, ov = ov,
                             cov = unname(imp$cov[ov, ov]),
                             mean = if (is.null(imp$mean)) rep(0, length(ov)) else unname(imp$mean[ov]))
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "montecarlo_population.json")
