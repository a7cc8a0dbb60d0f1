# Reference values for gapscale's EFA, from psych on public data.
# Run from the repository root: Rscript tests/reference/efa.R
# Data: tests/reference/bfi_600.csv (first 600 rows of psych::bfi's 25 items, with NAs).
# psych is given the pairwise Pearson correlation matrix and n.obs = 600, as gapscale is.
suppressPackageStartupMessages({library(psych); library(GPArotation); library(jsonlite)})
x <- read.csv("tests/reference/bfi_600.csv")
r <- cor(x, use = "pairwise")
n <- nrow(x)
solution <- function(f) list(
  loadings = unclass(f$loadings), phi = if (is.null(f$Phi)) diag(ncol(f$loadings)) else f$Phi,
  communality = unname(f$communality), uniquenesses = unname(f$uniquenesses),
  complexity = unname(f$complexity), vaccounted = unclass(f$Vaccounted),
  objective = f$objective, chisq = f$STATISTIC, dof = f$dof, pvalue = f$PVAL, tli = f$TLI,
  rmsea = unname(f$RMSEA[1:3]), bic = f$BIC, rms = f$rms)
out <- list(psych_version = as.character(packageVersion("psych")), n = n, items = colnames(x), r = unname(r))
for (case in list(c("minres", "oblimin"), c("ml", "promax"), c("pa", "varimax"))) {
  key <- paste(case, collapse = "_")
  out[[key]] <- solution(fa(r, nfactors = 5, n.obs = n, fm = case[1], rotate = case[2]))
  out[[paste0(case[1], "_unrotated")]] <- unclass(fa(r, nfactors = 5, n.obs = n, fm = case[1], rotate = "none")$loadings)
}
k <- KMO(r)
out$kmo <- list(msa = k$MSA, msai = unname(k$MSAi))
b <- cortest.bartlett(r, n = n)
out$bartlett <- list(chisq = b$chisq, df = b$df, pvalue = b$p.value)
out$map <- VSS(r, n = 8, n.obs = n, fm = "pc", rotate = "none", plot = FALSE)$map
out$kaiser <- sum(eigen(r)$values > 1)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE), "tests/reference/efa.json")
