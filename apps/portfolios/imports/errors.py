"""Every message an import can report, so pages, the API and tests agree on the wording."""

# File-level: the file as a whole cannot be read; nothing is imported.
ERR_EMPTY = "The file is empty."
ERR_NO_ROWS = "The file has a header but no data rows."
ERR_TOO_LARGE = "The file is larger than the import limit of {limit} bytes."
ERR_UTF16 = "The file is {encoding} encoded (byte-order mark at byte 0); save it as UTF-8 CSV and upload it again."
ERR_NUL_BYTE = "Line {line}, byte {offset}: NUL byte; the file looks like UTF-16 or a binary file, not UTF-8 CSV text."
ERR_NOT_UTF8 = (
    "Line {line}, byte {offset}: byte 0x{byte:02X} is not valid UTF-8; the file was probably saved in another "
    "encoding (such as Latin-1 or Windows-1252). Save it as UTF-8 CSV and upload it again."
)
ERR_CSV = "Line {line}: the CSV cannot be read ({detail})."
ERR_MISSING_COLUMNS = "Missing required column(s): {columns}."
ERR_UNEXPECTED_COLUMNS = "Unexpected column(s): {columns}. Allowed: {allowed}."
ERR_DUPLICATE_COLUMNS = "Column(s) named more than once: {columns}."
ERR_BLANK_COLUMN = "Column {position} of the header has no name."
ERR_UNKNOWN_KIND = "Unknown import kind {kind!r}; choose one of {kinds}."
ERR_SYMBOL_REQUIRED = (
    "This price file has no symbol column (Date,Open,High,Low,Close,Adj Close,Volume); give the symbol it is for."
)
ERR_SYMBOL_NOT_ALLOWED = "This price file has a symbol column; leave the separate symbol empty."
ERR_SYMBOL_UNKNOWN_OPTION = "Unknown symbol {symbol} given for the price file."
ERR_FILE_UNREADABLE = "The file cannot be read: {detail}."

# Row-level: the line is rejected; the column names the cell.
ERR_CELL_COUNT = "The line has {found} cells; the header has {expected}."
ERR_REQUIRED = "A value is required."
ERR_NUMBER = "Not a number: {value!r}."
ERR_NOT_FINITE = "Not a finite number: {value!r} (NaN and infinity are rejected)."
ERR_POSITIVE = "Must be greater than zero."
ERR_NOT_NEGATIVE = "Must be zero or more."
ERR_TOO_BIG = "Too large (at most {limit})."
ERR_DECIMALS = "At most {places} decimal places."
ERR_DATE = "Not a date: {value!r}. Use ISO dates YYYY-MM-DD (02/01/2024-style dates are ambiguous and refused)."
ERR_DATETIME = (
    "Not a date-time: {value!r}. Use ISO 8601 such as 2024-01-02T09:15:00+05:30 (without a zone it is read as UTC)."
)
ERR_BOOLEAN = "Not a yes/no value: {value!r} (use true/false, yes/no or 1/0)."
ERR_CHOICE = "{value!r} is not one of {choices}."
ERR_HIGH_LOW = "High {high} is below low {low}."
ERR_UNKNOWN_SYMBOL = "Unknown symbol {symbol}."
ERR_UNKNOWN_UNDERLYING = "Unknown underlying {symbol} (define it in the database or on an earlier line)."
ERR_UNKNOWN_PORTFOLIO = "Unknown portfolio {code}."
ERR_DUPLICATE_ROW = "{key} appears on lines {first} and {second}; keep one line per {what}."
ERR_AVERAGE_COST = "Average cost must be greater than zero for a non-zero quantity."
ERR_CLOSE_PRICE = "No price to close {symbol} at: give an average cost greater than zero."
ERR_DATABASE = "The database refused this line: {detail}."
ERR_TOO_LONG = "At most {limit} characters."
ERR_SIDE = "Side must be BUY or SELL, not {value!r}."
ERR_INTEGER = "Not a whole number: {value!r}."
