# Reference values for gapscale's CFA, from lavaan on Holzinger & Swineford (1939).
# Run from the repository root: Rscript tests/reference/cfa.R
# Writes tests/reference/hs_full.csv (the 301 rows, x1..x9 with school) and tests/reference/cfa.json.
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
hs <- lavaan::HolzingerSwineford1939
write.csv(hs[, c("id", "school", paste0("x", 1:9))], "tests/reference/hs_full.csv", row.names = FALSE)
model <- "visual =~ x1 + x2 + x3
          textual =~ x4 + x5 + x6
          speed =~ x7 + x8 + x9"
measures <- c("npar", "chisq", "df", "pvalue", "baseline.chisq", "baseline.df", "cfi", "tli", "rmsea",
              "rmsea.ci.lower", "rmsea.ci.upper", "rmsea.pvalue", "srmr", "logl", "unrestricted.logl",
              "aic", "bic", "ntotal")
out <- list(lavaan_version = as.character(packageVersion("lavaan")), model = model)
fit <- cfa(model, data = hs)
pe <- parameterEstimates(fit, standardized = TRUE)
ss <- standardizedSolution(fit)
out$ml <- list(fit = as.list(fitMeasures(fit, measures)),
               pe = pe[, c("lhs", "op", "rhs", "est", "se", "z", "pvalue", "ci.lower", "ci.upper", "std.all")],
               std = ss[, c("lhs", "op", "rhs", "est.std", "se", "z", "pvalue")],
               implied = unname(fitted(fit)$cov), converged = lavInspect(fit, "converged"),
               mi = modindices(fit)[, c("lhs", "op", "rhs", "mi", "epc", "sepc.all")],
               std_resid = unname(residuals(fit, type = "standardized")$cov))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"), "tests/reference/cfa.json")

# FIML: the same model on HS with 10% of the cells of x1..x9 deleted at random (seed 2026).
set.seed(2026)
hsm <- hs[, c("id", paste0("x", 1:9))]
for (v in paste0("x", 1:9)) hsm[sample(nrow(hsm), round(0.1 * nrow(hsm))), v] <- NA
write.csv(hsm, "tests/reference/hs_missing.csv", row.names = FALSE, na = "")
fit <- cfa(model, data = hsm, missing = "fiml")
pe <- parameterEstimates(fit, standardized = TRUE)
opts <- lavInspect(fit, "options")
out$fiml <- list(fit = as.list(fitMeasures(fit, c(measures, "baseline.chisq", "baseline.df"))),
                 pe = pe[, c("lhs", "op", "rhs", "est", "se", "z", "pvalue", "ci.lower", "ci.upper", "std.all")],
                 information = opts$information, observed_information = opts$observed.information,
                 h1_information = opts$h1.information)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"), "tests/reference/cfa.json")

# MLR: robust (Huber-White) standard errors and the Yuan-Bentler scaled test, complete data.
fit <- cfa(model, data = hs, estimator = "MLR")
pe <- parameterEstimates(fit, standardized = TRUE)
opts <- lavInspect(fit, "options")
out$mlr <- list(fit = as.list(fitMeasures(fit, c(measures, "chisq.scaled", "df.scaled", "pvalue.scaled",
                                                 "chisq.scaling.factor", "baseline.chisq.scaled",
                                                 "baseline.chisq.scaling.factor", "cfi.scaled", "tli.scaled",
                                                 "cfi.robust", "tli.robust", "rmsea.scaled", "rmsea.robust",
                                                 "rmsea.ci.lower.robust", "rmsea.ci.upper.robust"))),
                pe = pe[, c("lhs", "op", "rhs", "est", "se", "z", "pvalue", "ci.lower", "ci.upper", "std.all")],
                information = opts$information, observed_information = opts$observed.information,
                h1_information = opts$h1.information, se = opts$se, test = opts$test,
                meanstructure = opts$meanstructure)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"), "tests/reference/cfa.json")

# A hard case: an unmeasured method factor over the three factors, complete cases of hs_missing
# (lavaan converges to a solution with a negative latent variance, which it warns about).
hsc <- hsm[complete.cases(hsm), ]
hard <- paste(model, "METHOD =~ 1*x1 + 1*x2 + 1*x3 + 1*x4 + 1*x5 + 1*x6 + 1*x7 + 1*x8 + 1*x9",
              "METHOD ~~ 0*visual + 0*textual + 0*speed", sep = "\n")
fit <- suppressWarnings(cfa(hard, data = hsc))
pe <- parameterEstimates(fit)
out$hard <- list(model = hard, fit = as.list(fitMeasures(fit, c("chisq", "df", "cfi"))),
                 pe = pe[, c("lhs", "op", "rhs", "est")], converged = lavInspect(fit, "converged"))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"), "tests/reference/cfa.json")

# MLR with FIML on the same incomplete data.
fit <- cfa(model, data = hsm, missing = "fiml", estimator = "MLR")
pe <- parameterEstimates(fit, standardized = TRUE)
opts <- lavInspect(fit, "options")
out$mlr_fiml <- list(fit = as.list(fitMeasures(fit, c(measures, "chisq.scaled", "chisq.scaling.factor",
                                                      "baseline.chisq.scaled", "baseline.chisq.scaling.factor",
                                                      "cfi.robust", "tli.robust", "rmsea.robust"))),
                     pe = pe[, c("lhs", "op", "rhs", "est", "se")],
                     information = opts$information, h1_information = opts$h1.information)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, na = "null"), "tests/reference/cfa.json")
