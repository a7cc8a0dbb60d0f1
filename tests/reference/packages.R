# lavaan's and psych's numbers for benchmarks/packages.py (gapscale and the Python packages beside
# them). Run from the repository root:  Rscript tests/reference/packages.R [OUT.json]
# (default tests/reference/packages.json, the committed copy the benchmark reads without R).
# Made with R 4.2, lavaan 0.6-14, psych 2.2.9, GPArotation.
#
# Data (public): tests/reference/holzinger_swineford.csv (lavaan::HolzingerSwineford1939 x1-x9),
# tests/reference/hs_missing.csv (the same with 10% of each column deleted, seed 2026, cfa.R),
# tests/reference/bfi_25.csv (psych::bfi's 25 items, 2800 rows; its complete rows are used).
suppressPackageStartupMessages({library(lavaan); library(psych); library(GPArotation); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
out_path <- if (length(args)) args[1] else "tests/reference/packages.json"

HS <- "visual =~ x1 + x2 + x3\n textual =~ x4 + x5 + x6\n speed =~ x7 + x8 + x9"
hs <- read.csv("tests/reference/holzinger_swineford.csv")
hsm <- read.csv("tests/reference/hs_missing.csv")[, paste0("x", 1:9)]
bfi <- na.omit(read.csv("tests/reference/bfi_25.csv"))

cfa_record <- function(fit) {
  fm <- fitMeasures(fit, c("chisq", "df", "pvalue", "cfi", "tli", "rmsea", "srmr", "aic", "bic", "logl", "ntotal"))
  pe <- parameterEstimates(fit)
  pe <- pe[pe$op %in% c("=~", "~~"), ]
  list(fit = as.list(fm), lhs = pe$lhs, op = pe$op, rhs = pe$rhs, est = pe$est, se = pe$se)
}
timed <- function(expr) { t <- system.time(v <- expr); list(value = v, cpu = unname(t[1] + t[2])) }

out <- list(versions = list(R = R.version.string, lavaan = as.character(packageVersion("lavaan")),
                            psych = as.character(packageVersion("psych")),
                            GPArotation = as.character(packageVersion("GPArotation"))))
t <- timed(cfa(HS, hs)); out$cfa_ml <- c(cfa_record(t$value), cpu = t$cpu)
t <- timed(cfa(HS, hsm, missing = "ml", em.h1.tol = 1e-12)); out$cfa_fiml <- c(cfa_record(t$value), cpu = t$cpu)

efa_record <- function(f) list(loadings = unname(unclass(f$loadings)), phi = if (is.null(f$Phi)) NULL else unname(f$Phi),
                               items = rownames(f$loadings))
out$efa <- list(n = nrow(bfi),
                pa_none = efa_record(fa(bfi, 5, fm = "pa", rotate = "none")),
                pa_oblimin = efa_record(fa(bfi, 5, fm = "pa", rotate = "oblimin")),
                pa_promax = efa_record(fa(bfi, 5, fm = "pa", rotate = "promax")),
                pa_varimax = efa_record(fa(bfi, 5, fm = "pa", rotate = "varimax")),
                minres_oblimin = efa_record(fa(bfi, 5, fm = "minres", rotate = "oblimin")),
                ml_varimax = efa_record(fa(bfi, 5, fm = "ml", rotate = "varimax")))
# rotations of one unrotated loading matrix (psych's pa loadings): stats::varimax (Kaiser
# normalisation on, R's default) and off; psych's promax as fa(rotate = "promax") does it (kaiser(A,
# "Promax"): rows normalised, then Promax), psych's Promax without normalisation, stats::promax
A <- unclass(fa(bfi, 5, fm = "pa", rotate = "none")$loadings)
out$rotation <- list(unrotated = unname(A),
                     varimax_kaiser = unname(unclass(varimax(A, normalize = TRUE)$loadings)),
                     varimax_raw = unname(unclass(varimax(A, normalize = FALSE)$loadings)),
                     promax_psych = unname(unclass(psych::kaiser(A, rotate = "Promax")$loadings)),
                     promax_raw = unname(unclass(psych::Promax(A)$loadings)),
                     promax_stats = unname(unclass(stats::promax(A)$loadings)))
scales <- list(A = paste0("A", 1:5), C = paste0("C", 1:5), E = paste0("E", 1:5), N = paste0("N", 1:5),
               O = paste0("O", 1:5))
# the negatively keyed items reversed (7 - x on the 1-6 scale), as psych's bfi.keys say
keyed <- bfi
for (i in c("A1", "C4", "C5", "E1", "E2", "O2", "O5")) keyed[[i]] <- 7 - keyed[[i]]
out$alpha <- lapply(scales, function(s) psych::alpha(keyed[, s])$total$raw_alpha)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null"), out_path)
