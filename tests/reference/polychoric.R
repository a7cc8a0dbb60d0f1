# Reference values for gapscale's polychoric correlations (analysis/polychoric.py).
# Run from the repository root:
#   Rscript tests/reference/polychoric.R
# Needs: R >= 4 with psych (2.2.9 made the committed numbers), psychTools and jsonlite
# (Debian: r-cran-psych r-cran-psychtools r-cran-jsonlite).
# Input: public data sets from CRAN packages
#   psych::bfi        first 1000 rows of the 25 personality items (6-point, with NAs) plus
#                     gender (1/2) and education (1-5, with NAs)      -> bfi_1000.csv
#   psych::bfi        first 60 rows of the 25 items, read from bfi_600.csv (written by
#                     screening.R); with so few respondents the two-step matrix is not
#                     positive definite and psych::cor.smooth smooths it
#   psychTools::ability  16 binary (0/1) ability items, 1525 rows, with NAs -> ability.csv
# Output: tests/reference/polychoric.json, one entry per data set under "datasets":
#   csv, rows (null = all rows), columns, n,
#   correlation             psych::polychoric(x)$rho            (defaults: smooth = TRUE,
#                                                                global = TRUE, correct = .5)
#   correlation_unsmoothed  psych::polychoric(x, smooth = FALSE)$rho
#   thresholds              psych::polychoric(x)$tau, items x (range of values - 1), with the
#                           infinite entries psych gives for categories an item never uses as null
#   smoothed                whether cor.smooth changed the matrix (smallest eigenvalue of the
#                           unsmoothed matrix < .Machine$double.eps)
#   n_eigenvalues_adjusted  eigenvalues of the unsmoothed matrix below cor.smooth's eig.tol 1e-12
#   global                  FALSE when psych switched to pair-by-pair thresholds because the
#                           items do not share the same highest value ("global set to FALSE")
#   psych_warnings          the warnings psych gave
# "bfi_mixed" (A1-A5, gender, education) takes psych's pair-by-pair path, in which empty cells
# of each table get the continuity correction correct = .5.
suppressPackageStartupMessages({library(psych); library(jsonlite)})
options(mc.cores = 1)  # psych's mcmapply: one core, so warnings reach this process

bfi_1000 <- psych::bfi[1:1000, c(1:25, which(names(psych::bfi) %in% c("gender", "education")))]
write.csv(bfi_1000, "tests/reference/bfi_1000.csv", row.names = FALSE, na = "")
ability <- as.data.frame(psychTools::ability)
write.csv(ability, "tests/reference/ability.csv", row.names = FALSE, na = "")
bfi_600 <- read.csv("tests/reference/bfi_600.csv")

items <- names(psych::bfi)[1:25]
run <- function(x, csv, rows = NULL) {
  warns <- character()
  keep <- function(expr) withCallingHandlers(expr, warning = function(w) {
    warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")
  })
  smoothed_fit <- keep(polychoric(x))
  raw <- suppressWarnings(polychoric(x, smooth = FALSE))
  ev <- eigen(raw$rho, symmetric = TRUE, only.values = TRUE)$values
  tau <- unname(smoothed_fit$tau)
  tau[!is.finite(tau)] <- NA
  list(csv = csv, rows = rows, columns = colnames(x), n = nrow(x),
       correlation = unname(smoothed_fit$rho),
       correlation_unsmoothed = unname(raw$rho),
       thresholds = tau,
       smoothed = min(ev) < .Machine$double.eps,
       min_eigenvalue = min(ev),
       n_eigenvalues_adjusted = sum(ev < 1e-12),
       global = length(unique(apply(x, 2, max, na.rm = TRUE))) == 1,
       psych_warnings = I(unique(warns)))
}

datasets <- list(
  bfi_1000 = run(bfi_1000[, items], "bfi_1000.csv"),
  bfi_mixed = run(bfi_1000[, c("A1", "A2", "A3", "A4", "A5", "gender", "education")], "bfi_1000.csv"),
  bfi_60 = run(bfi_600[1:60, items], "bfi_600.csv", rows = 60),
  ability = run(ability, "ability.csv")
)
stopifnot(datasets$bfi_60$smoothed, !datasets$bfi_1000$smoothed, !datasets$bfi_mixed$global,
          datasets$bfi_1000$global)
out <- list(psych_version = as.character(packageVersion("psych")), datasets = datasets)
writeLines(toJSON(out, digits = NA, na = "null", auto_unbox = TRUE, null = "null"),
           "tests/reference/polychoric.json")
for (d in names(datasets)) cat(d, ": smoothed", datasets[[d]]$smoothed, " global", datasets[[d]]$global,
                               " min eigenvalue", datasets[[d]]$min_eigenvalue, "\n")
