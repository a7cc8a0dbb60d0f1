# Reference values for gapscale's careless-response screens, from base R on psych::bfi.
# Run from the repository root: Rscript tests/reference/screening.R
# Writes tests/reference/bfi_600.csv (the first 600 rows of the 25 bfi items) and
# tests/reference/screening.json:
#   irv        apply(x, 1, sd, na.rm = TRUE)                   (careless::irv's definition)
#   longstring max(rle(x[!is.na(x)])$lengths)                 (careless::longstring, NAs skipped)
#   mahalanobis mahalanobis(xc, colMeans(xc), cov(xc)) on complete cases (careless::mahad)
suppressPackageStartupMessages({library(psych); library(jsonlite)})
x <- psych::bfi[1:600, 1:25]
write.csv(x, "tests/reference/bfi_600.csv", row.names = FALSE, na = "")
irv <- apply(x, 1, function(r) if (sum(!is.na(r)) < 2) NA else sd(r, na.rm = TRUE))
longstring <- apply(x, 1, function(r) { r <- r[!is.na(r)]; if (length(r) == 0) 0 else max(rle(r)$lengths) })
complete <- complete.cases(x)
xc <- as.matrix(x[complete, ])
d2 <- mahalanobis(xc, colMeans(xc), cov(xc))
out <- list(
  psych_version = as.character(packageVersion("psych")),
  irv = unname(irv),
  longstring = unname(longstring),
  complete_rows = which(complete),
  mahalanobis_d2 = unname(d2),
  mahalanobis_p = unname(pchisq(d2, df = ncol(xc), lower.tail = FALSE))
)
writeLines(toJSON(out, digits = NA, na = "null"), "tests/reference/screening.json")
