# Reference values for gapscale's parallel analysis (analysis/efa.parallel_analysis), from
# psych::fa.parallel (psych 2.2.9) with its default settings: fa = "both", fm = "minres",
# nfactors = 1, SMC = FALSE, sim = TRUE, quant = .95, n.iter = 20, cor = "cor", use = "pairwise".
# Run from the repository root:
#   Rscript tests/reference/parallel.R
# Needs: R >= 4 with psych, psychTools (for ability) and jsonlite.
# Data (public; the CSVs are committed beside this script so the tests need no R):
#   bfi      psych::bfi, the 25 personality items, all 2800 rows, with NAs -> bfi_25.csv
#            (written here); Pearson and, as "bfi_poly", polychoric (cor = "poly")
#   ability  psychTools::ability, 16 binary items, 1525 rows, with NAs -> ability.csv
#   hs       lavaan::HolzingerSwineford1939 x1-x9, 301 rows -> holzinger_swineford.csv
# Output: tests/reference/parallel.json, one entry per data set under "datasets":
#   csv, cor, n (rows), items
#   pc_values        eigenvalues of the observed correlation matrix (fa.parallel's pc.values)
#   fa_values        eigenvalues of the observed matrix reduced by the one-factor minres
#                    communalities, fa(r, 1, fm = "minres")$values (fa.parallel's fa.values)
#   fa_values_smc    eigenvalues of the SMC-reduced matrix (fa.values with SMC = TRUE)
#   counts           nfact and ncomp of fa.parallel with its defaults (n.iter = 20), for
#                    set.seed(1), ..., set.seed(5) (bfi_poly: 1, 2, 3): the number psych
#                    reports, and whether it depends on the random draws
#   counts_smc       (not for bfi_poly) the same with SMC = TRUE
#   random           (not for bfi_poly) a long run, set.seed(2026) and n.iter = 500, that
#                    characterises the random eigenvalues, each block (resampled pc / fa,
#                    simulated pc / fa) as mean, sd (n - 1) and the 95% quantile (type 7) of
#                    the 500 replicates per eigenvalue
#   random_smc       the same with SMC = TRUE (the means and sds), for gapscale's SMC option
#   r                (bfi_poly only) psych::polychoric(x)$rho, the observed matrix
suppressPackageStartupMessages({library(psych); library(jsonlite)})
options(mc.cores = 1)  # mclapply runs as lapply: set.seed governs every draw
dir <- "tests/reference"

bfi25 <- psych::bfi[, 1:25]
write.csv(bfi25, file.path(dir, "bfi_25.csv"), row.names = FALSE, na = "")

sets <- list(
  bfi = list(csv = "bfi_25.csv", cor = "cor"),
  ability = list(csv = "ability.csv", cor = "cor"),
  hs = list(csv = "holzinger_swineford.csv", cor = "cor"),
  bfi_poly = list(csv = "bfi_25.csv", cor = "poly"))

blocks <- function(values, p) {
  # fa.parallel's $values: per replicate, resampled pc, resampled fa, simulated pc, simulated fa
  part <- function(k) {
    v <- values[, ((k - 1) * p + 1):(k * p), drop = FALSE]
    list(mean = unname(colMeans(v)), sd = unname(apply(v, 2, sd)),
         q95 = unname(apply(v, 2, quantile, probs = .95, type = 7)))
  }
  list(resampled_pc = part(1), resampled_fa = part(2), simulated_pc = part(3), simulated_fa = part(4))
}

check_blocks <- function(b, pa) {
  # blocks() reads $values in the order psych itself summarises them
  stopifnot(isTRUE(all.equal(b$resampled_pc$mean, unname(pa$pc.simr))),
            isTRUE(all.equal(b$resampled_fa$mean, unname(pa$fa.simr))),
            isTRUE(all.equal(b$simulated_pc$mean, unname(pa$pc.sim))),
            isTRUE(all.equal(b$simulated_fa$mean, unname(pa$fa.sim))))
  b
}

counts_for <- function(x, cor, seeds, SMC = FALSE) {
  counts <- list(nfact = integer(0), ncomp = integer(0))
  for (seed in seeds) {
    set.seed(seed)
    capture.output(pa <- fa.parallel(x, cor = cor, SMC = SMC, plot = FALSE))
    counts$nfact <- c(counts$nfact, pa$nfact)
    counts$ncomp <- c(counts$ncomp, pa$ncomp)
  }
  counts
}

out <- list(psych_version = as.character(packageVersion("psych")),
            r_version = R.version.string, datasets = list())
for (name in names(sets)) {
  s <- sets[[name]]
  x <- read.csv(file.path(dir, s$csv))
  p <- ncol(x)
  if (s$cor == "poly") rx <- polychoric(x)$rho else rx <- cor(x, use = "pairwise")
  entry <- list(csv = s$csv, cor = s$cor, n = nrow(x), items = colnames(x),
                pc_values = eigen(rx)$values,
                fa_values = fa(rx, nfactors = 1, rotate = "none", fm = "minres", warnings = FALSE)$values)
  rs <- rx
  diag(rs) <- smc(rx)
  entry$fa_values_smc <- eigen(rs)$values
  counts <- counts_for(x, s$cor, if (s$cor == "poly") 1:3 else 1:5)
  entry$counts <- counts
  if (s$cor == "poly") {
    entry$r <- unname(rx)
  } else {
    entry$counts_smc <- counts_for(x, s$cor, 1:5, SMC = TRUE)
    set.seed(2026)
    capture.output(pa <- fa.parallel(x, n.iter = 500, plot = FALSE))
    entry$random <- c(list(n_iter = 500), check_blocks(blocks(pa$values, p), pa))
    set.seed(2027)
    capture.output(pa <- fa.parallel(x, n.iter = 500, SMC = TRUE, plot = FALSE))
    entry$random_smc <- c(list(n_iter = 500), check_blocks(blocks(pa$values, p), pa))
  }
  out$datasets[[name]] <- entry
  cat(name, ": nfact", counts$nfact, "ncomp", counts$ncomp, "\n")
  writeLines(toJSON(out, digits = NA, auto_unbox = TRUE), file.path(dir, "parallel.json"))
}
