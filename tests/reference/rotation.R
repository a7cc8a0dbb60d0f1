# Reference values for gapscale's factor rotations (analysis/rotation.py), from psych and
# GPArotation. Run from the repository root: Rscript tests/reference/rotation.R
# (made with R 4, psych 2.2.9, GPArotation 2022.10-2).
#
# Two public data sets:
#   bfi5  tests/reference/bfi_600.csv, the first 600 rows of the 25 psych::bfi items (written by
#         screening.R), 5 factors;
#   hs3   lavaan::HolzingerSwineford1939, x1-x9, 3 factors; written here to
#         tests/reference/holzinger_swineford.csv.
# For each: the UNROTATED minres loadings psych::fa(x, k, rotate = "none", fm = "minres")$loadings,
# then per rotation
#   psych   psych::fa(x, k, rotate = METHOD, fm = "minres"): $loadings, $Phi (null when
#           orthogonal), as psych reports them (columns reflected to positive sums and ordered
#           by variance accounted for);
#   direct  the rotation applied to the unrotated loadings exactly as psych:::fac calls it,
#           with no reflection or reordering: stats::varimax(L) for "varimax";
#           GPArotation::<METHOD>(L) (normalize = FALSE, eps = 1e-5, maxit = 1000, Tmat = I)
#           for "quartimin", "oblimin", "geominQ", "geominT"; psych::kaiser(L, "Promax") for
#           "promax" and psych::Promax(L) for "Promax". Th is GPArotation's transformation
#           (L %*% t(solve(Th)) = rotated, Phi = t(Th) %*% Th); for stats::varimax and the
#           promax family it is computed from their rotmat as t(solve(rotmat)).
# Also, direct only, the non-default settings gapscale exposes: stats::varimax(L, normalize =
# FALSE), GPArotation::oblimin(L, normalize = TRUE) and geominQ(L, normalize = TRUE) (Kaiser
# normalisation), GPArotation::oblimin(L, gam = 0.5) (biquartimin) and geominQ(L, delta = 0.05).
# Writes tests/reference/rotation.json.
suppressPackageStartupMessages({library(psych); library(GPArotation); library(jsonlite)})

bfi <- read.csv("tests/reference/bfi_600.csv")
hs <- lavaan::HolzingerSwineford1939[, paste0("x", 1:9)]
write.csv(hs, "tests/reference/holzinger_swineford.csv", row.names = FALSE, na = "")
hs <- read.csv("tests/reference/holzinger_swineford.csv")

unclass_loadings <- function(l) { l <- unclass(l); dimnames(l) <- NULL; l }

gpa <- function(r) list(loadings = unclass_loadings(r$loadings), Phi = if (r$orthogonal) NULL else r$Phi,
                        Th = r$Th, iterations = max(r$Table[, 1]), convergence = r$convergence)

direct <- function(L, method) {
  switch(method,
    varimax = { r <- stats::varimax(L); list(loadings = r$loadings, Phi = NULL, Th = t(solve(r$rotmat)),
                                             iterations = NULL, convergence = NULL) },
    promax = { r <- psych::kaiser(L, rotate = "Promax"); list(loadings = r$loadings, Phi = r$Phi,
                                                               Th = t(solve(r$rotmat)), iterations = NULL,
                                                               convergence = NULL) },
    Promax = { r <- psych::Promax(L); list(loadings = r$loadings, Phi = r$Phi, Th = t(solve(r$rotmat)),
                                           iterations = NULL, convergence = NULL) },
    gpa(do.call(getFromNamespace(method, "GPArotation"), list(L))))
}

methods <- c("varimax", "quartimin", "oblimin", "geominQ", "geominT", "promax", "Promax")
case <- function(name, data, k) {
  f0 <- psych::fa(data, nfactors = k, rotate = "none", fm = "minres")
  L <- unclass_loadings(f0$loadings)
  out <- list(name = name, columns = colnames(data), nfactors = k, unrotated = L, methods = list())
  for (m in methods) {
    f <- psych::fa(data, nfactors = k, rotate = m, fm = "minres")
    d <- direct(L, m)
    out$methods[[m]] <- list(
      psych = list(loadings = unclass_loadings(f$loadings), Phi = f$Phi),
      direct = list(loadings = unclass_loadings(d$loadings), Phi = d$Phi, Th = d$Th,
                    iterations = d$iterations, convergence = d$convergence))
  }
  extra <- list(
    varimax_raw = { r <- stats::varimax(L, normalize = FALSE)
                    list(loadings = unclass_loadings(r$loadings), Phi = NULL, Th = t(solve(r$rotmat))) },
    oblimin_kaiser = gpa(GPArotation::oblimin(L, normalize = TRUE)),
    geominQ_kaiser = gpa(GPArotation::geominQ(L, normalize = TRUE)),
    oblimin_gam05 = gpa(GPArotation::oblimin(L, gam = 0.5)),
    geominQ_delta05 = gpa(GPArotation::geominQ(L, delta = 0.05)))
  out$extra <- extra
  out
}

out <- list(
  r_version = R.version.string,
  psych_version = as.character(packageVersion("psych")),
  gparotation_version = as.character(packageVersion("GPArotation")),
  cases = list(case("bfi5", bfi, 5), case("hs3", hs, 3))
)
writeLines(toJSON(out, digits = NA, null = "null", auto_unbox = TRUE, matrix = "rowmajor"),
           "tests/reference/rotation.json")
