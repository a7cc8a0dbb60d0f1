# Reference values for the gapscale population model, computed by lavaan.
# Run from the repository root:
#   python tests/reference/make_population_model.py && Rscript tests/reference/population_model.R
# Input:  tests/reference/population_model.lavaan (every parameter fixed)
# Output: tests/reference/population_model.json  (implied latent and item covariances, R^2)
suppressPackageStartupMessages({library(lavaan); library(jsonlite)})
model <- paste(readLines("tests/reference/population_model.lavaan"), collapse = "\n")
pt <- lavaanify(model)
items <- unique(pt$rhs[pt$op == "=~" & !(pt$rhs %in% pt$lhs[pt$op == "=~"])])
observed <- lavNames(pt, "ov")  # the items and the observed covariates (controls)
S <- diag(length(observed)); dimnames(S) <- list(observed, observed)
# Nothing is free: do.fit = FALSE evaluates the model at the fixed values; the covariates'
# variances are the model's own (fixed.x = FALSE), not S's.
fit <- lavaan(model, sample.cov = S, sample.nobs = 1000, do.fit = FALSE, start = "simple", fixed.x = FALSE)
stopifnot(nrow(parTable(fit)[parTable(fit)$free > 0, ]) == 0)
cov_lv <- lavInspect(fit, "cov.lv")
implied <- lavInspect(fit, "implied")$cov[items, items]
r2 <- lavInspect(fit, "r2")
out <- list(
  lavaan_version = as.character(packageVersion("lavaan")),
  latents = rownames(cov_lv),
  cov_lv = unname(as.matrix(cov_lv)),
  items = rownames(implied),
  implied_cov = unname(as.matrix(implied)),
  r2 = as.list(r2)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE), "tests/reference/population_model.json")
