# Reference values for analysis.multilevel.design_effect (tests/test_multilevel.py).
# Rscript multilevel.R  (R 4, multilevel 2.7 from Debian's r-cran-multilevel)
# Writes bh1996.csv (Bliese & Halverson 1996, shipped with multilevel: 7382 soldiers in 99
# companies), clustered_missing.csv (unequal clusters, a singleton, missing values and rows
# without a cluster) and multilevel.json with the one-way ANOVA mean squares and ICC1 per column.
suppressMessages(library(multilevel))
library(jsonlite)

one <- function(d, y, g) {
  keep <- !is.na(d[[y]]) & !is.na(d[[g]])
  dd <- d[keep, ]
  m <- aov(dd[[y]] ~ as.factor(dd[[g]]))
  s <- summary(m)[[1]]
  n <- nrow(dd); j <- length(unique(dd[[g]]))
  icc <- ICC1(m)
  msize <- n / j
  deff <- 1 + (msize - 1) * max(icc, 0)
  list(variable = y, n = n, n_clusters = j, mean_cluster_size = msize,
       ms_between = s[1, "Mean Sq"], ms_within = s[2, "Mean Sq"], icc1 = icc,
       design_effect = deff, n_effective = n / deff)
}

data(bh1996)
bh <- bh1996[, c("GRP", "LEAD", "HRS", "WBEING")]
bh[, -1] <- round(bh[, -1], 5)  # the file holds these values; R computes on them too
write.csv(bh, "bh1996.csv", row.names = FALSE)

set.seed(20261202)
sizes <- c(1, sample(2:15, 24, replace = TRUE))
g <- rep(sprintf("org%02d", seq_along(sizes)), sizes)
u <- rnorm(length(sizes))[as.integer(factor(g, levels = unique(g)))]
d <- data.frame(cluster = g, x = round(0.5 * u + rnorm(length(g)), 4), z = round(rnorm(length(g)), 4))
d$x[sample(nrow(d), 12)] <- NA
d$z[sample(nrow(d), 5)] <- NA
d$cluster[sample(nrow(d), 4)] <- NA
write.csv(d, "clustered_missing.csv", row.names = FALSE, na = "")

out <- list(
  bh1996 = lapply(c("LEAD", "HRS", "WBEING"), function(y) one(bh, y, "GRP")),
  clustered_missing = lapply(c("x", "z"), function(y) one(d, y, "cluster"))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "multilevel.json")
