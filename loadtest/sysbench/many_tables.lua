-- otter loadtest workload `many-tables`: --tables small tables (default 1,000).
--   prepare: creates mt1..mtN with --table-size rows each
--   run:     each event is one transaction on a random table: an INSERT of a new row
--            and an UPDATE of an existing one.
sysbench.cmdline.options = {
  tables = {"Number of tables", 1000},
  table_size = {"Rows per table created by prepare", 10},
}

function cmd_prepare()
  local con = sysbench.sql.driver():connect()
  for t = sysbench.tid + 1, sysbench.opt.tables, sysbench.opt.threads do
    con:query(string.format([[CREATE TABLE mt%d (
      id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
      k INT NOT NULL,
      v VARCHAR(100) NOT NULL) ENGINE=InnoDB]], t))
    for i = 1, sysbench.opt.table_size do
      con:query(string.format("INSERT INTO mt%d (k, v) VALUES (%d, '%s')", t, i,
        sysbench.rand.string("v-#################")))
    end
  end
end

sysbench.cmdline.commands = { prepare = {cmd_prepare, sysbench.cmdline.PARALLEL_COMMAND} }

function thread_init()
  con = sysbench.sql.driver():connect()
end

function event()
  local t = sysbench.rand.default(1, sysbench.opt.tables)
  con:query("BEGIN")
  con:query(string.format("INSERT INTO mt%d (k, v) VALUES (%d, '%s')", t,
    sysbench.rand.default(1, 1000000), sysbench.rand.string("v-#################")))
  con:query(string.format("UPDATE mt%d SET k = k + 1 WHERE id = %d", t,
    sysbench.rand.default(1, sysbench.opt.table_size)))
  con:query("COMMIT")
end

function thread_done()
  con:disconnect()
end
