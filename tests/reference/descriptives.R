# Reference values for gapscale's item descriptives and Mardia's test (analysis/descriptives.py),
# from psych on public data.
# Run from the repository root: Rscript tests/reference/descriptives.R
# Made with R 4, psych 2.2.9.
#
# Data
#   tests/reference/bfi_600.csv              first 600 rows of psych::bfi's 25 items, with NAs.
#   tests/reference/holzinger_swineford.csv  lavaan::HolzingerSwineford1939, x1-x9.
#   tests/reference/hs_missing.csv           HolzingerSwineford1939 x1-x9 with cells deleted
#                                            (10% of each column, seed 2026: cfa.R).
# Writes
#   tests/reference/descriptives.json
#     describe.<data>.<type>: psych::describe(d, type = t) columns n, mean, sd, skew, kurtosis,
#       per item (type 3 is psych's default), and pct_missing = 100 * mean(is.na(column)).
#     mardia.<data>: psych::mardia(d, plot = FALSE) (complete cases: na.omit), with b1p, b2p,
#       skew (n b1p / 6), small.skew, the chi-square df p(p+1)(p+2)/6, p.skew, p.small,
#       kurtosis (the z) and p.kurt.
suppressPackageStartupMessages({library(psych); library(jsonlite)})

sets <- list(
  bfi = read.csv("tests/reference/bfi_600.csv"),
  hs = read.csv("tests/reference/holzinger_swineford.csv"),
  hs_missing = read.csv("tests/reference/hs_missing.csv")[, paste0("x", 1:9)]
)

out <- list(versions = list(R = R.version.string, psych = as.character(packageVersion("psych"))),
            describe = list(), mardia = list())
for (name in names(sets)) {
  d <- sets[[name]]
  out$describe[[name]] <- list()
  for (t in 1:3) {
    ds <- describe(d, type = t)
    out$describe[[name]][[paste0("type", t)]] <- list(
      item = rownames(ds), n = ds$n, mean = ds$mean, sd = ds$sd, skew = ds$skew, kurtosis = ds$kurtosis,
      pct_missing = unname(100 * colMeans(is.na(d))))
  }
  m <- mardia(d, plot = FALSE)
  p <- ncol(d)
  out$mardia[[name]] <- list(
    n = m$n.obs, p = p, b1p = m$b1p, b2p = m$b2p, skew = m$skew, small_skew = m$small.skew,
    df = p * (p + 1) * (p + 2) / 6, p_skew = m$p.skew, p_small = m$p.small, kurtosis = m$kurtosis,
    p_kurt = m$p.kurt)
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/descriptives.json")
