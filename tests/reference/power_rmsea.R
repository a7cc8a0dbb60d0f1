# Reference values for analysis/power.py (tests/test_power_rmsea.py): the RMSEA power and
# sample size of MacCallum, Browne & Sugawara (1996) and the nested test of MacCallum, Browne &
# Cai (2006), from semTools. Run from the repository root:
#   Rscript tests/reference/power_rmsea.R
# Writes tests/reference/power_rmsea.json.
suppressPackageStartupMessages(library(semTools))
library(jsonlite)

# semTools' documented examples (?findRMSEApower, ?findRMSEAsamplesize, ?findRMSEApowernested)
examples <- list(
  power = findRMSEApower(rmsea0 = .05, rmseaA = .08, df = 20, n = 200),
  samplesize = findRMSEAsamplesize(rmsea0 = .05, rmseaA = .08, df = 20, power = 0.80),
  nested = findRMSEApowernested(rmsea0A = 0.06, rmsea0B = 0.05, rmsea1A = 0.08,
                                rmsea1B = 0.05, dfA = 22, dfB = 20, n = 200,
                                alpha = 0.05, group = 1)
)

# close (.05 vs .08), exact (0 vs .05), not-close (.05 vs .01 and vs 0), a poor-fit pair
pairs <- list(c(.05, .08), c(0, .05), c(.05, .01), c(.05, 0), c(.08, .10))
dfs <- c(1, 2, 5, 10, 24, 50, 100, 300, 2331)
ns <- c(30, 100, 200, 500, 1000, 2500)
grid <- list()
sizes <- list()
for (pr in pairs) for (df in dfs) for (alpha in c(.05, .01)) for (g in c(1, 2)) {
  for (n in ns) {
    grid[[length(grid) + 1]] <- list(rmsea0 = pr[1], rmseaA = pr[2], df = df, n = n,
      alpha = alpha, group = g,
      power = findRMSEApower(pr[1], pr[2], df, n, alpha, group = g))
  }
  if (df <= 300) {  # semTools scans n in steps of 500: slow for tiny effects
    s <- findRMSEAsamplesize(pr[1], pr[2], df, power = .80, alpha = alpha, group = g)
    sizes[[length(sizes) + 1]] <- list(rmsea0 = pr[1], rmseaA = pr[2], df = df, alpha = alpha,
      group = g, power = .80, n = if (is.character(s)) NA else s, note = if (is.character(s)) s else "")
  }
}
nested <- list()
for (n in c(100, 200, 500)) for (d in list(c(22, 20), c(50, 45), c(10, 9))) {
  nested[[length(nested) + 1]] <- list(rmsea0A = .06, rmsea0B = .05, rmsea1A = .08,
    rmsea1B = .05, dfA = d[1], dfB = d[2], n = n, alpha = .05, group = 1,
    power = findRMSEApowernested(.06, .05, .08, .05, d[1], d[2], n, .05, 1))
  nested[[length(nested) + 1]] <- list(rmsea0A = 0, rmsea0B = 0, rmsea1A = .05,
    rmsea1B = .03, dfA = d[1], dfB = d[2], n = n, alpha = .05, group = 2,
    power = findRMSEApowernested(0, 0, .05, .03, d[1], d[2], n, .05, 2))
}
out <- list(semTools = as.character(packageVersion("semTools")), R = R.version.string,
            examples = examples, grid = grid, sizes = sizes, nested = nested)
write_json(out, "tests/reference/power_rmsea.json", auto_unbox = TRUE, digits = NA, pretty = TRUE)
