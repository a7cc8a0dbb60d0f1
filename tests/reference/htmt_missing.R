# Reference values for HTMT under the CFA's missing-data treatment and for the construct
# correlation table (analysis/reliability.py: htmt(missing = ...), fornell_larcker; the
# reliability stage's htmt.csv and construct_correlations.csv), from lavaan and semTools.
# Run from the repository root: Rscript tests/reference/htmt_missing.R
# Made with R 4, lavaan 0.6-14, semTools 0.5-6.
#
# Data (public, with missing values)
#   tests/reference/hs_missing.csv  lavaan::HolzingerSwineford1939 x1-x9 with 10% of each column deleted (seed 2026, cfa.R)
#   tests/reference/bfi_600.csv     the first 600 rows of psych::bfi's 25 items, with their NAs
# Writes tests/reference/htmt_missing.json:
#   htmt.<case>: semTools::htmt(model, data, missing = m) for m in "ml", "pairwise", "listwise";
#     "<case>_ml_tight": the same HTMT from lavCor(data, missing = "ml", em.h1.tol = 1e-12) passed as
#     sample.cov. semTools' htmt(missing = "ml") runs lavaan's EM with its default tolerance
#     (em.h1.tol = 1e-5), so its correlations are those of the converged EM to about 3e-6; gapscale's
#     EM converges to 1e-10 and matches the tight values.
#   cfa_fiml.hs: cfa(model, hs_missing, missing = "ml", em.h1.tol = 1e-12): lavInspect(fit, "cor.lv")
#     and sqrt(semTools::AVE(fit)) (the Fornell-Larcker diagonal).
suppressPackageStartupMessages({library(lavaan); library(semTools); library(jsonlite)})

hsm <- read.csv("tests/reference/hs_missing.csv")[, paste0("x", 1:9)]
bfi <- read.csv("tests/reference/bfi_600.csv")
models <- list(
  hs = "visual =~ x1 + x2 + x3\n textual =~ x4 + x5 + x6\n speed =~ x7 + x8 + x9",
  bfi = paste("A =~ A1 + A2 + A3 + A4 + A5", "C =~ C1 + C2 + C3 + C4 + C5", "E =~ E1 + E2 + E3 + E4 + E5",
              "N =~ N1 + N2 + N3 + N4 + N5", "O =~ O1 + O2 + O3 + O4 + O5", sep = "\n")
)
data <- list(hs = hsm, bfi = bfi)
as_list <- function(m) list(factors = rownames(m), matrix = unname(unclass(m)))

out <- list(versions = list(R = R.version.string, lavaan = as.character(packageVersion("lavaan")),
                            semTools = as.character(packageVersion("semTools"))), htmt = list())
for (case in names(models)) {
  for (m in c("ml", "pairwise", "listwise")) {
    out$htmt[[paste(case, m, sep = "_")]] <- as_list(htmt(models[[case]], data[[case]], missing = m))
  }
  r <- unclass(lavCor(data[[case]], missing = "ml", em.h1.tol = 1e-12))
  out$htmt[[paste0(case, "_ml_tight")]] <- as_list(htmt(models[[case]], sample.cov = r))
  out$htmt[[paste0(case, "_ml_tight_arithmetic")]] <- as_list(htmt(models[[case]], sample.cov = r, htmt2 = FALSE))
}

fit <- cfa(models$hs, hsm, missing = "ml", em.h1.tol = 1e-12)
out$cfa_fiml <- list(hs = list(factors = lavNames(fit, "lv"), cor_lv = unname(unclass(lavInspect(fit, "cor.lv"))),
                               sqrt_ave = unname(sqrt(AVE(fit)[lavNames(fit, "lv")])),
                               ntotal = lavInspect(fit, "ntotal")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/htmt_missing.json")
