# Reference values for the Holm adjustment (analysis/invariance.py: holm, statsmodels' multipletests).
# Run from the repository root: Rscript tests/reference/p_adjust.R   (R's stats::p.adjust)
# Writes tests/reference/p_adjust.json: for each case the p values (NA as null) and
# p.adjust(p, "holm"), which leaves NAs out of the count of tests.
suppressPackageStartupMessages(library(jsonlite))
set.seed(1979)
cases <- list(
  uniform = runif(20),
  small = c(1e-12, 3e-8, 0.0004, 0.002, 0.01, 0.011, 0.049, 0.2),
  ties = c(0.01, 0.01, 0.03, 0.03, 0.5, 0.5, 0.04),
  above_one = c(0.3, 0.6, 0.9, 0.45),
  one = 0.03,
  with_na = c(0.02, NA, 0.001, 0.04, NA, 0.3)
)
out <- lapply(cases, function(p) list(p = p, holm = p.adjust(p, "holm")))
out$versions <- list(R = R.version.string)
writeLines(toJSON(out, digits = NA, auto_unbox = FALSE, pretty = TRUE, na = "null"), "tests/reference/p_adjust.json")
