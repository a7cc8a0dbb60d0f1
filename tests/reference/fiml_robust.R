# Reference values for MLR with FIML (lavaan missing = "fiml", estimator = "MLR"): robust SEs,
# the Yuan-Bentler scaled test, and the scaled and robust CFI/TLI/RMSEA, which lavaan computes
# with incomplete data by the FIML-corrected statistic of Zhang & Savalei (2023, "FIML-C(V3)",
# lavaan:::lav_fit_fiml_corrected). Also ML with FIML (observed information by the Hessian) on a
# structural model with equality labels and a residual covariance.
# Run from the repository root: Rscript tests/reference/fiml_robust.R
# Reads tests/reference/hs_missing.csv (written by cfa.R); writes tests/reference/sim40_missing.csv
# (simulated, 40 items) and tests/reference/fiml_robust.json.
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
hsm <- read.csv("tests/reference/hs_missing.csv")

measures <- c("npar", "chisq", "df", "pvalue", "baseline.chisq", "baseline.df", "cfi", "tli", "rmsea",
              "rmsea.ci.lower", "rmsea.ci.upper", "srmr", "logl", "unrestricted.logl", "ntotal",
              "chisq.scaled", "df.scaled", "pvalue.scaled", "chisq.scaling.factor", "baseline.chisq.scaled",
              "baseline.chisq.scaling.factor", "cfi.scaled", "tli.scaled", "rmsea.scaled",
              "cfi.robust", "tli.robust", "rmsea.robust", "rmsea.ci.lower.robust", "rmsea.ci.upper.robust")

# tight = TRUE: lavaan's EM for the saturated moments run to 1e-12 instead of its default 1e-5
# (em.h1.tol). The robust CFI/TLI/RMSEA depend on the EM moments to first order, so these are
# the values to check an exact implementation against.
mlr_fiml <- function(model, data, tight = FALSE) {
  fit <- if (tight) {
    cfa(model, data = data, missing = "fiml", estimator = "MLR", em.h1.tol = 1e-12, em.h1.iter.max = 100000L)
  } else {
    cfa(model, data = data, missing = "fiml", estimator = "MLR")
  }
  pe <- parameterEstimates(fit)
  opts <- lavInspect(fit, "options")
  # The FIML-corrected statistics behind cfi.robust, tli.robust, rmsea.robust (V3 with a scaled test).
  fimlc <- lavaan:::lav_fit_fiml_corrected(fit, version = "V3")
  list(model = model, tight = tight, converged = lavInspect(fit, "converged"),
       fit = as.list(fitMeasures(fit, measures)), fimlc = fimlc,
       pe = pe[, c("lhs", "op", "rhs", "est", "se")],
       information = opts$information, observed_information = opts$observed.information,
       h1_information = opts$h1.information, se = opts$se, test = opts$test)
}

ml_fiml <- function(model, data) {
  fit <- cfa(model, data = data, missing = "fiml")
  pe <- parameterEstimates(fit)
  opts <- lavInspect(fit, "options")
  list(model = model, fit = as.list(fitMeasures(fit, c("chisq", "df", "cfi", "logl"))),
       pe = pe[, c("lhs", "op", "rhs", "est", "se")],
       information = opts$information, observed_information = opts$observed.information)
}

hs3 <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9"
# Regressions among latents (B), an equality label across two of them, a residual covariance.
hs_sem <- "visual =~ x1 + x2 + x3
textual =~ x4 + x5 + x6
speed =~ x7 + x8 + x9
textual ~ b*visual
speed ~ b*visual + textual
x2 ~~ x3"
out <- list(lavaan_version = as.character(packageVersion("lavaan")))
out$hs3 <- mlr_fiml(hs3, hsm)
out$hs3_tight <- mlr_fiml(hs3, hsm, tight = TRUE)
out$hs_sem <- mlr_fiml(hs_sem, hsm)
out$hs_sem_tight <- mlr_fiml(hs_sem, hsm, tight = TRUE)
out$hs_sem_ml <- ml_fiml(hs_sem, hsm)
# Just identified (df = 0): lavaan gives no scaling factor and no scaled RMSEA (NA), and CFI/TLI 1.
out$just_identified <- suppressWarnings(mlr_fiml("f =~ x1 + x2 + x3", hsm))

# 40 items (820 + 40 saturated-model parameters, above the former limit of 500), non-normal,
# 5% of the cells missing completely at random.
set.seed(2027)
pop <- paste(sapply(1:4, function(f) paste0("F", f, " =~ ", paste0(c(0.8, 0.7, 0.6, 0.5, 0.7, 0.6, 0.8, 0.5, 0.6, 0.7),
                                                                        "*y", (f - 1) * 10 + 1:10, collapse = " + "))),
             collapse = "\n")
pop <- paste(pop, "F1 ~~ 0.3*F2 + 0.3*F3 + 0.2*F4\nF2 ~~ 0.4*F3 + 0.3*F4\nF3 ~~ 0.3*F4", sep = "\n")
sim <- simulateData(pop, sample.nobs = 300, skewness = 1, kurtosis = 2, standardized = TRUE)
for (v in names(sim)) sim[sample(nrow(sim), 15), v] <- NA
sim <- round(sim, 2)
write.csv(sim, "tests/reference/sim40_missing.csv", row.names = FALSE, na = "")
sim <- read.csv("tests/reference/sim40_missing.csv")
sim40 <- paste(sapply(1:4, function(f) paste0("F", f, " =~ ", paste0("y", (f - 1) * 10 + 1:10, collapse = " + "))),
               collapse = "\n")
out$sim40 <- mlr_fiml(sim40, sim)
out$sim40_tight <- mlr_fiml(sim40, sim, tight = TRUE)

# MLR with FIML in the unified engine (tests/test_fiml_robust.py through analysis.sem.api.fit_model):
# every fit measure lavaan reports (NA ones listed in fit_na), parameterEstimates with std.all.
# Two groups (school) with and without equal loadings, and a MIMIC SEM with fixed.x covariates
# (6 rows missing ageyr: lavaan drops them), on hs_missing_cov.csv (written by engine_fiml.R).
# Each with lavaan's defaults and with em.h1.tol = 1e-12 ("_tight").
hsc <- read.csv("tests/reference/hs_missing_cov.csv")
pe_cols <- c("lhs", "op", "rhs", "group", "label", "est", "se", "std.lv", "std.all")
mlr_full <- function(model, data, fun = "cfa", group = NULL, tight = FALSE, ...) {
  args <- list(model, data = data, missing = "ml", estimator = "MLR", ...)
  if (!is.null(group)) args$group <- group
  if (tight) { args$em.h1.tol <- 1e-12; args$em.h1.iter.max <- 100000L }
  fit <- suppressWarnings(do.call(fun, args))
  pe <- parameterEstimates(fit, standardized = TRUE)
  if (!"group" %in% names(pe)) pe$group <- 1L
  if (!"label" %in% names(pe)) pe$label <- ""
  fm <- fitMeasures(fit)
  list(model = model, group = group, group_labels = lavInspect(fit, "group.label"), tight = tight,
       converged = lavInspect(fit, "converged"), nobs = lavInspect(fit, "nobs"),
       fit = as.list(fm[!is.na(fm)]), fit_na = names(fm)[is.na(fm)], pe = pe[, pe_cols])
}
mimic <- paste(hs3, "visual ~ sex + ageyr\ntextual ~ visual + sex\nspeed ~ textual", sep = "\n")
for (tight in c(FALSE, TRUE)) {
  sfx <- if (tight) "_tight" else ""
  out$engine[[paste0("mg_configural", sfx)]] <- mlr_full(hs3, hsc, group = "school", tight = tight)
  out$engine[[paste0("mg_loadings", sfx)]] <- mlr_full(hs3, hsc, group = "school", tight = tight,
                                                        group.equal = "loadings")
  out$engine[[paste0("mimic", sfx)]] <- mlr_full(mimic, hsc, fun = "sem", tight = tight)
  out$engine[[paste0("hs_sem", sfx)]] <- mlr_full(hs_sem, hsm, tight = tight)
}
# ML with FIML and information = "expected" (lavaan: the expected information under the
# missingness patterns at the implied moments, h1.information = "structured"): SEs.
expected_se <- function(model, data, fun = "cfa", group = NULL, ...) {
  args <- list(model, data = data, missing = "ml", information = "expected", ...)
  if (!is.null(group)) args$group <- group
  fit <- suppressWarnings(do.call(fun, args))
  pe <- parameterEstimates(fit)
  if (!"group" %in% names(pe)) pe$group <- 1L
  list(model = model, group = group, group_labels = lavInspect(fit, "group.label"),
       information = lavInspect(fit, "options")$information, pe = pe[, c("lhs", "op", "rhs", "group", "est", "se")])
}
out$expected <- list(hs_sem = expected_se(hs_sem, hsm), mimic = expected_se(mimic, hsc, fun = "sem"),
                     mg_loadings = expected_se(hs3, hsc, group = "school", group.equal = "loadings"))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"), "tests/reference/fiml_robust.json")
