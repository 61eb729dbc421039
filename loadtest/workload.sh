# The mixed bulk workload both benchmarks record (sourced; needs DB, ROWS, UPDATES,
# DELETES): ~200-byte rows, 1,000-row INSERT ... SELECT / UPDATE / DELETE statements.

# bench_table: the CREATE TABLE statement of $DB.t.
bench_table() {
  echo "CREATE TABLE $DB.t (id BIGINT PRIMARY KEY, k INT NOT NULL, c VARCHAR(120) NOT NULL,
  pad VARCHAR(60) NOT NULL, amount DECIMAL(12,2), at DATETIME(3))"
}

# bench_workload: the statements, ROWS inserts then UPDATES updates then DELETES deletes.
bench_workload() {
  local a
  for ((a = 1; a <= ROWS; a += 1000)); do
    echo "INSERT INTO $DB.t SELECT seq, seq % 1000, REPEAT(CHAR(97 + seq % 26), 120), REPEAT('p', 60), seq / 100, TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_${a}_to_$((a + 999));"
  done
  for ((a = 1; a <= UPDATES; a += 1000)); do
    echo "UPDATE $DB.t SET k = k + 1, amount = amount + 1 WHERE id BETWEEN $a AND $((a + 999));"
  done
  for ((a = ROWS - DELETES + 1; a <= ROWS; a += 1000)); do
    echo "DELETE FROM $DB.t WHERE id BETWEEN $a AND $((a + 999));"
  done
}
