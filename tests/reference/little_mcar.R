# Reference values for gapscale's missing-data summaries and Little's (1988) MCAR test.
# Run from the repository root:
#   Rscript tests/reference/little_mcar.R
# Needs: R >= 4 with lavaan, psych and jsonlite (Debian: r-cran-lavaan r-cran-psych r-cran-jsonlite).
# Input:  public data sets that ship with R: datasets::airquality (all six columns; Ozone and
#         Solar.R have NAs) and psych::bfi items A1-A5 and C1-C5 (2800 respondents).
# Output: tests/reference/little_mcar.json and the inputs as CSV next to it
#         (tests/reference/airquality.csv, tests/reference/bfi_ac.csv) so the Python tests need no R.
#
# Which implementation. The R function researchers cite is naniar::mcar_test() (adapted from
# BaylorEdPsych::LittleMCAR(); misty::na.test() is another). None of naniar, misty,
# BaylorEdPsych or norm (whose em.norm() naniar calls) is packaged in Debian, so this script
# writes the test out following Little (1988), the way naniar::mcar_test() computes it:
#   1. mean mu and covariance Sigma by EM under multivariate normality (ML, denominator n),
#      written out below (em_mvn) and cross-checked against lavaan's own EM estimate of the
#      unrestricted (h1) moments, lavInspect(fit, "sampstat") of a saturated model fitted with
#      missing = "ml";
#   2. d2 = sum_j n_j (ybar_j - mu_j)' Sigma_j^{-1} (ybar_j - mu_j) over missing-data patterns j,
#      mu_j and Sigma_j restricted to the variables observed in pattern j;
#   3. df = sum_j p_j - p; p-value = pchisq(d2, df, lower.tail = FALSE).
# Rows with every variable missing carry no information and are dropped before step 1
# (naniar counts them as a pattern with d2 contribution 0 and p_j = 0, so d2 and df agree).
# Check against naniar: naniar's own unit test (tests/testthat/test-mcar-test.R) expects
# mcar_test(airquality) to give statistic 35.1061288689702, df 14, p 0.00141778113856683,
# 4 patterns; the script stops unless it reproduces these (to 1e-4: naniar's norm::em.norm stops
# at a relative change of 1e-4, this EM at 1e-12, so the last digits differ).
suppressPackageStartupMessages({library(lavaan); library(psych); library(jsonlite)})

# ---------------------------------------------------------------------------- EM (ML) for MVN
# E-step: for each row, the missing part is replaced by its conditional mean given the
# observed part, mu_m + Sigma_mo Sigma_oo^{-1} (y_o - mu_o), and the conditional covariance
# Sigma_mm - Sigma_mo Sigma_oo^{-1} Sigma_om is added to the cross-products.
# M-step: mu = T1 / n, Sigma = T2 / n - mu mu'. Data are centred at the observed means first
# (for accuracy of T2 / n - mu mu'); the estimates are shifted back at the end.
em_mvn <- function(X, tol = 1e-12, max_iter = 100000L) {
  X <- as.matrix(X)
  n <- nrow(X); p <- ncol(X)
  centre <- colMeans(X, na.rm = TRUE)
  X <- sweep(X, 2, centre)
  obs <- !is.na(X)
  groups <- split(seq_len(n), apply(obs, 1, function(r) paste(as.integer(r), collapse = "")))
  mu <- rep(0, p)
  S <- diag(apply(X, 2, function(x) mean(x^2, na.rm = TRUE)), p)
  for (it in seq_len(max_iter)) {
    T1 <- numeric(p); T2 <- matrix(0, p, p)
    for (g in groups) {
      o <- obs[g[1], ]; m <- !o
      Y <- X[g, , drop = FALSE]
      C <- matrix(0, p, p)
      if (any(m)) {
        B <- S[m, o, drop = FALSE] %*% solve(S[o, o, drop = FALSE])
        D <- sweep(Y[, o, drop = FALSE], 2, mu[o])
        Y[, m] <- sweep(D %*% t(B), 2, mu[m], "+")
        C[m, m] <- length(g) * (S[m, m, drop = FALSE] - B %*% S[o, m, drop = FALSE])
      }
      T1 <- T1 + colSums(Y)
      T2 <- T2 + crossprod(Y) + C
    }
    mu_new <- T1 / n
    S_new <- T2 / n - tcrossprod(mu_new)
    change <- max(abs(c(mu_new - mu, S_new - S))) / max(abs(diag(S_new)))
    mu <- mu_new; S <- S_new
    if (change < tol) break
  }
  if (change >= tol) stop("EM did not converge")
  # Observed-data log-likelihood at the estimate.
  loglik <- 0
  for (g in groups) {
    o <- obs[g[1], ]
    D <- sweep(X[g, o, drop = FALSE], 2, mu[o])
    So <- S[o, o, drop = FALSE]
    loglik <- loglik - 0.5 * (length(g) * (sum(o) * log(2 * pi) + as.numeric(determinant(So)$modulus)) +
                                sum(D * t(solve(So, t(D)))))
  }
  names(mu) <- colnames(X); dimnames(S) <- list(colnames(X), colnames(X))
  list(mean = mu + centre, cov = S, iterations = it, loglik = loglik)
}

# ---------------------------------------------------------------------------- Little's test
little_mcar <- function(X) {
  X <- as.matrix(X)
  X <- X[rowSums(!is.na(X)) > 0, , drop = FALSE]  # rows missing every column are dropped
  p <- ncol(X)
  em <- em_mvn(X)
  obs <- !is.na(X)
  groups <- split(seq_len(nrow(X)), apply(obs, 1, function(r) paste(as.integer(r), collapse = "")))
  d2 <- 0; df <- -p
  for (g in groups) {
    o <- obs[g[1], ]
    diff <- colMeans(X[g, o, drop = FALSE]) - em$mean[o]
    d2 <- d2 + length(g) * as.numeric(t(diff) %*% solve(em$cov[o, o, drop = FALSE], diff))
    df <- df + sum(o)
  }
  list(statistic = d2, df = df, pvalue = pchisq(d2, df, lower.tail = FALSE),
       n_patterns = length(groups), n = nrow(X), em = em)
}

# lavaan's EM estimate of the unrestricted moments (h1) and the saturated log-likelihood.
lavaan_h1 <- function(X) {
  X <- as.data.frame(X)
  X <- X[rowSums(!is.na(X)) > 0, , drop = FALSE]
  v <- names(X)
  pairs <- outer(v, v, function(a, b) paste(a, "~~", b))[upper.tri(diag(length(v)), diag = TRUE)]
  fit <- suppressWarnings(lavaan(paste(c(pairs, paste(v, "~ 1")), collapse = "\n"),
                                 data = X, missing = "ml"))
  h1 <- lavInspect(fit, "sampstat")
  list(mean = unname(h1$mean[v]), cov = unname(unclass(h1$cov)[v, v]),
       loglik = unname(fitMeasures(fit, "unrestricted.logl")))
}

patterns <- function(X) {
  key <- apply(!is.na(X), 1, function(r) paste(as.integer(r), collapse = ""))
  tab <- sort(table(key), decreasing = TRUE)
  lapply(names(tab), function(k) list(pattern = as.integer(strsplit(k, "")[[1]]),
                                      n = unname(as.integer(tab[k]))))
}

reference <- function(X, csv, id = NULL) {
  t <- little_mcar(X)
  h1 <- lavaan_h1(X)
  rel <- function(a, b) max(abs(a - b)) / max(abs(diag(t$em$cov)))
  cat(sprintf("%-10s d2 = %.10f  df = %d  p = %.6g  patterns = %d  n = %d  EM iterations = %d\n",
              csv, t$statistic, t$df, t$pvalue, t$n_patterns, t$n, t$em$iterations))
  cat(sprintf("%-10s own EM vs lavaan h1: mean %.2e, cov %.2e (relative to the largest variance), loglik %.2e\n",
              "", rel(t$em$mean, h1$mean), rel(t$em$cov, h1$cov), abs(t$em$loglik - h1$loglik)))
  stopifnot(rel(t$em$mean, h1$mean) < 1e-5, rel(t$em$cov, h1$cov) < 1e-5, abs(t$em$loglik - h1$loglik) < 1e-4)
  list(
    csv = csv,
    columns = colnames(X),
    id_column = id,
    n_rows = nrow(X),
    statistic = t$statistic, df = t$df, pvalue = t$pvalue, n_patterns = t$n_patterns, n = t$n,
    em_mean = unname(t$em$mean), em_cov = unname(t$em$cov), em_loglik = t$em$loglik,
    em_iterations = t$em$iterations,
    lavaan_h1_mean = h1$mean, lavaan_h1_cov = h1$cov, lavaan_h1_loglik = h1$loglik,
    missing_by_item = list(variable = colnames(X), n = rep(nrow(X), ncol(X)),
                           n_missing = unname(colSums(is.na(X))),
                           pct_missing = unname(100 * colSums(is.na(X)) / nrow(X))),
    missing_by_respondent = list(n_missing = unname(rowSums(is.na(X)))),
    patterns = patterns(X)
  )
}

dir <- "tests/reference"

# airquality: every column, as naniar's own test of mcar_test() uses it.
air <- datasets::airquality
write.csv(air, file.path(dir, "airquality.csv"), row.names = FALSE, na = "")
ref_air <- reference(air, "airquality.csv")
naniar <- list(statistic = 35.1061288689702, df = 14, pvalue = 0.00141778113856683, n_patterns = 4L)
stopifnot(abs(ref_air$statistic - naniar$statistic) < 1e-4, ref_air$df == naniar$df,
          abs(ref_air$pvalue - naniar$pvalue) < 1e-6, ref_air$n_patterns == naniar$n_patterns)

# psych::bfi: agreeableness and conscientiousness items, the respondent id from the row names.
data(bfi, package = "psych", envir = environment())
items <- c(paste0("A", 1:5), paste0("C", 1:5))
bfi_ac <- data.frame(id = as.integer(rownames(bfi)), bfi[, items])
write.csv(bfi_ac, file.path(dir, "bfi_ac.csv"), row.names = FALSE, na = "")
ref_bfi <- reference(bfi_ac[, items], "bfi_ac.csv", id = "id")
ref_bfi$ids <- bfi_ac$id

out <- list(
  note = paste("Made by tests/reference/little_mcar.R: Little's (1988) MCAR test written out in R",
               "(EM under multivariate normality, ML), EM moments cross-checked against lavaan's h1 EM;",
               "airquality also checked against naniar::mcar_test's published value."),
  r_version = R.version.string,
  lavaan_version = as.character(packageVersion("lavaan")),
  psych_version = as.character(packageVersion("psych")),
  naniar_mcar_test_airquality = naniar,
  datasets = list(airquality = ref_air, bfi_ac = ref_bfi)
)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null"), file.path(dir, "little_mcar.json"))
