//! ksqlDB's built-in functions as `SHOW FUNCTIONS` and `DESCRIBE FUNCTION` present them: each one's
//! name, kind, category, signatures and a one-line description (in Eddy's words). Every name here
//! resolves in a query; `tests/functions/` has at least one case for each.

/// Whether a function maps a row to a value, folds rows into one, or makes rows of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    Scalar,
    Aggregate,
    Table,
}

impl FunctionKind {
    /// As ksqlDB's `DESCRIBE FUNCTION` names it: `SCALAR`, `AGGREGATE`, `TABLE`.
    pub fn label(self) -> &'static str {
        match self {
            FunctionKind::Scalar => "SCALAR",
            FunctionKind::Aggregate => "AGGREGATE",
            FunctionKind::Table => "TABLE",
        }
    }
}

/// One built-in function.
#[derive(Debug, Clone, Copy)]
pub struct FunctionDoc {
    /// Upper case, as ksqlDB lists it.
    pub name: &'static str,
    pub kind: FunctionKind,
    /// ksqlDB's category: STRING, MATHEMATICAL, DATE / TIME, JSON, URL, ARRAY, MAP, LAMBDA, CONVERSIONS, AGGREGATE,
    /// TABLE, OTHER, REGULAR EXPRESSION or CONDITIONAL, as the function's own class declares it.
    pub category: &'static str,
    /// One line per overload, ksqlDB style: `REGEXP_EXTRACT(pattern STRING, input STRING, group INT) -> STRING`.
    pub signatures: &'static [&'static str],
    /// One sentence, our own words, saying what it returns and the notable null/edge rule.
    pub description: &'static str,
}

/// Every built-in, sorted by name.
pub const CATALOGUE: &[FunctionDoc] = &[
    FunctionDoc {
        name: "ABS",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "ABS(value INT) -> INT",
            "ABS(value BIGINT) -> BIGINT",
            "ABS(value DOUBLE) -> DOUBLE",
            "ABS(value DECIMAL) -> DECIMAL",
        ],
        description: "Returns the absolute value in the input's type; the smallest INT or BIGINT overflows and stays negative, NULL gives NULL.",
    },
    FunctionDoc {
        name: "ACOS",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["ACOS(value INT) -> DOUBLE", "ACOS(value BIGINT) -> DOUBLE", "ACOS(value DOUBLE) -> DOUBLE"],
        description: "Returns the arc cosine in radians, from 0 to pi; input outside [-1, 1] gives NaN, NULL gives NULL.",
    },
    FunctionDoc {
        name: "ARRAY_CONCAT",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &["ARRAY_CONCAT(first ARRAY<T>, second ARRAY<T>) -> ARRAY<T>"],
        description: "Returns the first array's elements followed by the second's, duplicates kept; a single NULL array counts as empty, two give NULL.",
    },
    FunctionDoc {
        name: "ARRAY_CONTAINS",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &["ARRAY_CONTAINS(input ARRAY<T>, value T) -> BOOLEAN"],
        description: "Returns TRUE if some element equals the value (a NULL value finds a NULL element); a NULL array gives FALSE, never NULL.",
    },
    FunctionDoc {
        name: "ARRAY_DISTINCT",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &["ARRAY_DISTINCT(input ARRAY<T>) -> ARRAY<T>"],
        description: "Returns the array without repeated elements, in first-seen order and keeping one NULL; a NULL array gives NULL.",
    },
    FunctionDoc {
        name: "ARRAY_EXCEPT",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &["ARRAY_EXCEPT(input ARRAY<T>, excluded ARRAY<T>) -> ARRAY<T>"],
        description: "Returns the distinct elements of the first array that are not in the second, in order; either array NULL gives NULL.",
    },
    FunctionDoc {
        name: "ARRAY_INTERSECT",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &["ARRAY_INTERSECT(first ARRAY<T>, second ARRAY<T>) -> ARRAY<T>"],
        description: "Returns the distinct elements present in both arrays, in the first array's order; either array NULL gives NULL.",
    },
    FunctionDoc {
        name: "ARRAY_JOIN",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &["ARRAY_JOIN(input ARRAY<T>) -> STRING", "ARRAY_JOIN(input ARRAY<T>, delimiter STRING) -> STRING"],
        description: "Joins the elements as text with a delimiter (default comma), NULLs written as null; non-primitive elements are an error, NULL gives NULL.",
    },
    FunctionDoc {
        name: "ARRAY_LENGTH",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &["ARRAY_LENGTH(input ARRAY<T>) -> INT"],
        description: "Returns the number of elements, NULL elements included; a NULL array gives NULL.",
    },
    FunctionDoc {
        name: "ARRAY_MAX",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &["ARRAY_MAX(input ARRAY<T>) -> T"],
        description: "Returns the largest non-NULL element in natural order; an empty, all-NULL or NULL array gives NULL.",
    },
    FunctionDoc {
        name: "ARRAY_MIN",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &["ARRAY_MIN(input ARRAY<T>) -> T"],
        description: "Returns the smallest non-NULL element in natural order; an empty, all-NULL or NULL array gives NULL.",
    },
    FunctionDoc {
        name: "ARRAY_REMOVE",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &["ARRAY_REMOVE(input ARRAY<T>, value T) -> ARRAY<T>"],
        description: "Returns the array without the elements equal to the value (a NULL value removes NULLs); a NULL array gives NULL.",
    },
    FunctionDoc {
        name: "ARRAY_SORT",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &[
            "ARRAY_SORT(input ARRAY<T>) -> ARRAY<T>",
            "ARRAY_SORT(input ARRAY<T>, direction STRING) -> ARRAY<T>",
        ],
        description: "Sorts the elements ascending, or descending when asked, with NULLs last; an unknown direction or a NULL array gives NULL.",
    },
    FunctionDoc {
        name: "ARRAY_UNION",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &["ARRAY_UNION(first ARRAY<T>, second ARRAY<T>) -> ARRAY<T>"],
        description: "Returns the distinct elements of both arrays, the first array's before the second's; either array NULL gives NULL.",
    },
    FunctionDoc {
        name: "ASIN",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["ASIN(value INT) -> DOUBLE", "ASIN(value BIGINT) -> DOUBLE", "ASIN(value DOUBLE) -> DOUBLE"],
        description: "Returns the arc sine in radians, from -pi/2 to pi/2; input outside [-1, 1] gives NaN, NULL gives NULL.",
    },
    FunctionDoc {
        name: "AS_MAP",
        kind: FunctionKind::Scalar,
        category: "MAP",
        signatures: &["AS_MAP(keys ARRAY<STRING>, values ARRAY<T>) -> MAP<STRING,T>"],
        description: "Builds a map pairing each key with the value at the same position (missing values become NULL); either array NULL gives NULL.",
    },
    FunctionDoc {
        name: "AS_VALUE",
        kind: FunctionKind::Scalar,
        category: "OTHER",
        signatures: &["AS_VALUE(value T) -> T"],
        description: "Returns its argument unchanged; used in a projection, it copies a key column into the value columns.",
    },
    FunctionDoc {
        name: "ATAN",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["ATAN(value INT) -> DOUBLE", "ATAN(value BIGINT) -> DOUBLE", "ATAN(value DOUBLE) -> DOUBLE"],
        description: "Returns the arc tangent in radians, between -pi/2 and pi/2; NULL gives NULL.",
    },
    FunctionDoc {
        name: "ATAN2",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "ATAN2(y INT, x INT) -> DOUBLE",
            "ATAN2(y BIGINT, x BIGINT) -> DOUBLE",
            "ATAN2(y DOUBLE, x DOUBLE) -> DOUBLE",
        ],
        description: "Returns the angle in radians of the point (x, y), taking y first, with Java's rules for zeros and infinities; NULL gives NULL.",
    },
    FunctionDoc {
        name: "ATTR",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &["ATTR(value T) -> T"],
        description: "Returns the one distinct value seen in the group, or NULL when there is none or more than one (NULL counts as a value).",
    },
    FunctionDoc {
        name: "AVG",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &["AVG(value INT) -> DOUBLE", "AVG(value BIGINT) -> DOUBLE", "AVG(value DOUBLE) -> DOUBLE"],
        description: "Returns the mean of the non-NULL values as a DOUBLE; a group with no non-NULL values gives 0.0, not NULL.",
    },
    FunctionDoc {
        name: "BIGINT_FROM_BYTES",
        kind: FunctionKind::Scalar,
        category: "CONVERSIONS",
        signatures: &[
            "BIGINT_FROM_BYTES(bytes BYTES) -> BIGINT",
            "BIGINT_FROM_BYTES(bytes BYTES, byte_order STRING) -> BIGINT",
        ],
        description: "Reads an 8-byte signed integer, big-endian unless LITTLE_ENDIAN is given; a wrong length or byte order is an error, NULL gives NULL.",
    },
    FunctionDoc {
        name: "CBRT",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["CBRT(value INT) -> DOUBLE", "CBRT(value BIGINT) -> DOUBLE", "CBRT(value DOUBLE) -> DOUBLE"],
        description: "Returns the cube root, negative for negative input; NULL gives NULL.",
    },
    FunctionDoc {
        name: "CEIL",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "CEIL(value INT) -> INT",
            "CEIL(value BIGINT) -> BIGINT",
            "CEIL(value DOUBLE) -> DOUBLE",
            "CEIL(value DECIMAL) -> DECIMAL",
        ],
        description: "Rounds up to a whole number in the input's type (DECIMAL keeps its scale); integers pass through unchanged, NULL gives NULL.",
    },
    FunctionDoc {
        name: "CHR",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["CHR(code_point INT) -> STRING", "CHR(escaped STRING) -> STRING"],
        description: r"The character of a Unicode code point, or the text of a Java escape such as '\u004b'; a bad code point gives NULL, a bad escape is an error.",
    },
    FunctionDoc {
        name: "COALESCE",
        kind: FunctionKind::Scalar,
        category: "CONDITIONAL",
        signatures: &["COALESCE(first T, others T...) -> T"],
        description: "Returns the first argument that is not NULL, or NULL when all are; every argument must have the same type.",
    },
    FunctionDoc {
        name: "COLLECT_LIST",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &["COLLECT_LIST(value T) -> ARRAY<T>"],
        description: "Gathers every value in the group, NULLs included, into an array in arrival order, up to the configured size limit.",
    },
    FunctionDoc {
        name: "COLLECT_SET",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &["COLLECT_SET(value T) -> ARRAY<T>"],
        description: "Gathers the distinct values in the group (at most one NULL) into an array in first-seen order, up to the configured size limit.",
    },
    FunctionDoc {
        name: "CONCAT",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["CONCAT(inputs STRING...) -> STRING", "CONCAT(inputs BYTES...) -> BYTES"],
        description: "Joins the arguments end to end, skipping NULLs; when every argument is NULL the result is empty rather than NULL.",
    },
    FunctionDoc {
        name: "CONCAT_WS",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &[
            "CONCAT_WS(separator STRING, inputs STRING...) -> STRING",
            "CONCAT_WS(separator BYTES, inputs BYTES...) -> BYTES",
        ],
        description: "Joins the non-NULL inputs with the separator between them; a NULL separator gives NULL, fewer than two arguments is an error.",
    },
    FunctionDoc {
        name: "CONVERT_TZ",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["CONVERT_TZ(timestamp TIMESTAMP, from_zone STRING, to_zone STRING) -> TIMESTAMP"],
        description: "Shifts a timestamp from one time zone's clock to another's; an unknown zone is an error, any NULL gives NULL.",
    },
    FunctionDoc {
        name: "CORRELATION",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &[
            "CORRELATION(x DOUBLE, y DOUBLE) -> DOUBLE",
            "CORRELATION(x INT, y INT) -> DOUBLE",
            "CORRELATION(x BIGINT, y BIGINT) -> DOUBLE",
        ],
        description: "Returns the Pearson correlation of x and y over rows where both are non-NULL; fewer than two rows or zero variance gives NaN.",
    },
    FunctionDoc {
        name: "COS",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["COS(angle INT) -> DOUBLE", "COS(angle BIGINT) -> DOUBLE", "COS(angle DOUBLE) -> DOUBLE"],
        description: "Returns the cosine of an angle in radians; infinite or NaN input gives NaN, NULL gives NULL.",
    },
    FunctionDoc {
        name: "COSH",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["COSH(value INT) -> DOUBLE", "COSH(value BIGINT) -> DOUBLE", "COSH(value DOUBLE) -> DOUBLE"],
        description: "Returns the hyperbolic cosine; overflow gives Infinity, NULL gives NULL.",
    },
    FunctionDoc {
        name: "COT",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["COT(angle INT) -> DOUBLE", "COT(angle BIGINT) -> DOUBLE", "COT(angle DOUBLE) -> DOUBLE"],
        description: "Returns the cotangent (1/tan) of an angle in radians; zero gives Infinity with the input's sign, NULL gives NULL.",
    },
    FunctionDoc {
        name: "COUNT",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &["COUNT(value T) -> BIGINT", "COUNT(*) -> BIGINT"],
        description: "Counts the non-NULL values in the group, starting from 0; COUNT(*) and COUNT() count every row.",
    },
    FunctionDoc {
        name: "COUNT_DISTINCT",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &["COUNT_DISTINCT(value T) -> BIGINT"],
        description: "Estimates how many distinct non-NULL values the group holds using a HyperLogLog sketch, so the count is approximate.",
    },
    FunctionDoc {
        name: "CUBE_EXPLODE",
        kind: FunctionKind::Table,
        category: "TABLE",
        signatures: &["CUBE_EXPLODE(input ARRAY<T>) -> ARRAY<T>"],
        description: "Emits one row per way of keeping or nulling each element, the original array last; a NULL array gives no rows, over 20 elements an error.",
    },
    FunctionDoc {
        name: "DATEADD",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["DATEADD(unit INTERVALUNIT, interval INT, date DATE) -> DATE"],
        description: "Adds an interval in the given unit to a date, dropping any remainder smaller than a day; any NULL gives NULL.",
    },
    FunctionDoc {
        name: "DATESUB",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["DATESUB(unit INTERVALUNIT, interval INT, date DATE) -> DATE"],
        description: "Subtracts an interval in the given unit from a date, dropping any remainder smaller than a day; any NULL gives NULL.",
    },
    FunctionDoc {
        name: "DATETOSTRING",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["DATETOSTRING(epoch_days INT, pattern STRING) -> STRING"],
        description: "Deprecated (use FORMAT_DATE): formats a count of days since 1970-01-01 with a date pattern; a NULL pattern gives NULL, NULL days an error.",
    },
    FunctionDoc {
        name: "DEGREES",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "DEGREES(radians INT) -> DOUBLE",
            "DEGREES(radians BIGINT) -> DOUBLE",
            "DEGREES(radians DOUBLE) -> DOUBLE",
        ],
        description: "Converts an angle from radians to degrees; NULL gives NULL.",
    },
    FunctionDoc {
        name: "DOUBLE_FROM_BYTES",
        kind: FunctionKind::Scalar,
        category: "CONVERSIONS",
        signatures: &[
            "DOUBLE_FROM_BYTES(bytes BYTES) -> DOUBLE",
            "DOUBLE_FROM_BYTES(bytes BYTES, byte_order STRING) -> DOUBLE",
        ],
        description: "Reads an 8-byte IEEE-754 double, big-endian unless LITTLE_ENDIAN is given; a wrong length or byte order is an error, NULL gives NULL.",
    },
    FunctionDoc {
        name: "EARLIEST_BY_OFFSET",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &[
            "EARLIEST_BY_OFFSET(value T) -> T",
            "EARLIEST_BY_OFFSET(value T, ignore_nulls BOOLEAN) -> T",
            "EARLIEST_BY_OFFSET(value T, count INT) -> ARRAY<T>",
            "EARLIEST_BY_OFFSET(value T, count INT, ignore_nulls BOOLEAN) -> ARRAY<T>",
        ],
        description: "Returns the first value, or first n values, in offset order, skipping NULLs unless told not to; no values gives NULL or an empty array.",
    },
    FunctionDoc {
        name: "ELT",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["ELT(index INT, choices STRING...) -> STRING"],
        description: "Returns the choice at the given 1-based index (the inverse of FIELD); an index outside the list gives NULL, a NULL index is an error.",
    },
    FunctionDoc {
        name: "ENCODE",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["ENCODE(input STRING, input_encoding STRING, output_encoding STRING) -> STRING"],
        description: "Re-encodes text between hex, utf8, ascii and base64; unknown or identical encodings are an error, NULL input gives NULL.",
    },
    FunctionDoc {
        name: "ENTRIES",
        kind: FunctionKind::Scalar,
        category: "MAP",
        signatures: &[
            "ENTRIES(input MAP<STRING,INT>, sorted BOOLEAN) -> ARRAY<STRUCT<K STRING, V INT>>",
            "ENTRIES(input MAP<STRING,BIGINT>, sorted BOOLEAN) -> ARRAY<STRUCT<K STRING, V BIGINT>>",
            "ENTRIES(input MAP<STRING,DOUBLE>, sorted BOOLEAN) -> ARRAY<STRUCT<K STRING, V DOUBLE>>",
            "ENTRIES(input MAP<STRING,BOOLEAN>, sorted BOOLEAN) -> ARRAY<STRUCT<K STRING, V BOOLEAN>>",
            "ENTRIES(input MAP<STRING,STRING>, sorted BOOLEAN) -> ARRAY<STRUCT<K STRING, V STRING>>",
        ],
        description: "Returns the map's entries as an array of {K, V} structs, sorted by key when the flag is TRUE; a NULL map gives NULL.",
    },
    FunctionDoc {
        name: "EXP",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "EXP(exponent INT) -> DOUBLE",
            "EXP(exponent BIGINT) -> DOUBLE",
            "EXP(exponent DOUBLE) -> DOUBLE",
        ],
        description: "Returns e raised to the given power; overflow gives Infinity, NULL gives NULL.",
    },
    FunctionDoc {
        name: "EXPLODE",
        kind: FunctionKind::Table,
        category: "TABLE",
        signatures: &["EXPLODE(input ARRAY<T>) -> T"],
        description: "Emits one row per array element, in order; a NULL or empty array gives no rows.",
    },
    FunctionDoc {
        name: "EXTRACTJSONFIELD",
        kind: FunctionKind::Scalar,
        category: "JSON",
        signatures: &["EXTRACTJSONFIELD(json STRING, path STRING) -> STRING"],
        description: "Returns the value at a JSON path such as $.a[0].b as text, strings unquoted; a missing path gives NULL, invalid JSON is an error.",
    },
    FunctionDoc {
        name: "FIELD",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["FIELD(target STRING, candidates STRING...) -> INT"],
        description: "Returns the 1-based position of the first candidate equal to the target, or 0 when none matches or the target is NULL.",
    },
    FunctionDoc {
        name: "FILTER",
        kind: FunctionKind::Scalar,
        category: "LAMBDA",
        signatures: &[
            "FILTER(input ARRAY<T>, predicate (T) => BOOLEAN) -> ARRAY<T>",
            "FILTER(input MAP<K,V>, predicate (K, V) => BOOLEAN) -> MAP<K,V>",
        ],
        description: "Keeps the array elements or map entries for which the lambda is TRUE; a NULL collection gives NULL, a NULL lambda result is an error.",
    },
    FunctionDoc {
        name: "FLOOR",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "FLOOR(value INT) -> INT",
            "FLOOR(value BIGINT) -> BIGINT",
            "FLOOR(value DOUBLE) -> DOUBLE",
            "FLOOR(value DECIMAL) -> DECIMAL",
        ],
        description: "Rounds down to a whole number in the input's type (DECIMAL keeps its scale); integers pass through unchanged, NULL gives NULL.",
    },
    FunctionDoc {
        name: "FORMAT_DATE",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["FORMAT_DATE(date DATE, pattern STRING) -> STRING"],
        description: "Formats a date with a Java date pattern; a pattern that needs time-of-day fields is an error, any NULL gives NULL.",
    },
    FunctionDoc {
        name: "FORMAT_TIME",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["FORMAT_TIME(time TIME, pattern STRING) -> STRING"],
        description: "Formats a time of day with a Java time pattern; a pattern that needs date fields is an error, any NULL gives NULL.",
    },
    FunctionDoc {
        name: "FORMAT_TIMESTAMP",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &[
            "FORMAT_TIMESTAMP(timestamp TIMESTAMP, pattern STRING) -> STRING",
            "FORMAT_TIMESTAMP(timestamp TIMESTAMP, pattern STRING, time_zone STRING) -> STRING",
        ],
        description: "Formats a timestamp with a Java pattern in the given time zone, or UTC by default; a bad pattern or zone is an error, NULL gives NULL.",
    },
    FunctionDoc {
        name: "FROM_BYTES",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["FROM_BYTES(bytes BYTES, encoding STRING) -> STRING"],
        description: "Renders bytes as hex, utf8, ascii or base64 text; an unknown encoding is an error and a NULL argument gives NULL.",
    },
    FunctionDoc {
        name: "FROM_DAYS",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["FROM_DAYS(days INT) -> DATE"],
        description: "Returns the date that many days after 1970-01-01 (negative counts go earlier); a NULL argument is an error.",
    },
    FunctionDoc {
        name: "FROM_UNIXTIME",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["FROM_UNIXTIME(epoch_millis BIGINT) -> TIMESTAMP"],
        description: "Turns milliseconds since the Unix epoch into a TIMESTAMP; NULL gives NULL.",
    },
    FunctionDoc {
        name: "GENERATE_SERIES",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &[
            "GENERATE_SERIES(start INT, end INT) -> ARRAY<INT>",
            "GENERATE_SERIES(start INT, end INT, step INT) -> ARRAY<INT>",
            "GENERATE_SERIES(start BIGINT, end BIGINT) -> ARRAY<BIGINT>",
            "GENERATE_SERIES(start BIGINT, end BIGINT, step INT) -> ARRAY<BIGINT>",
        ],
        description: "Returns the numbers from start to end inclusive by a step (default 1 or -1); a zero or wrong-signed step, or any NULL, is an error.",
    },
    FunctionDoc {
        name: "GEO_DISTANCE",
        kind: FunctionKind::Scalar,
        category: "OTHER",
        signatures: &[
            "GEO_DISTANCE(from_latitude DOUBLE, from_longitude DOUBLE, to_latitude DOUBLE, to_longitude DOUBLE) -> DOUBLE",
            "GEO_DISTANCE(from_latitude DOUBLE, from_longitude DOUBLE, to_latitude DOUBLE, to_longitude DOUBLE, unit STRING) -> DOUBLE",
        ],
        description: "Returns the great-circle distance between two points in km, or miles if asked; out-of-range coordinates, unknown units or NULLs are errors.",
    },
    FunctionDoc {
        name: "GREATEST",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "GREATEST(value INT, more_values INT...) -> INT",
            "GREATEST(value BIGINT, more_values BIGINT...) -> BIGINT",
            "GREATEST(value DOUBLE, more_values DOUBLE...) -> DOUBLE",
            "GREATEST(value DECIMAL, more_values DECIMAL...) -> DECIMAL",
            "GREATEST(value STRING, more_values STRING...) -> STRING",
            "GREATEST(value BYTES, more_values BYTES...) -> BYTES",
            "GREATEST(value DATE, more_values DATE...) -> DATE",
            "GREATEST(value TIME, more_values TIME...) -> TIME",
            "GREATEST(value TIMESTAMP, more_values TIMESTAMP...) -> TIMESTAMP",
        ],
        description: "Returns the largest non-NULL argument, or NULL when all are NULL; every argument must have the same type.",
    },
    FunctionDoc {
        name: "HISTOGRAM",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &["HISTOGRAM(value STRING) -> MAP<STRING,BIGINT>"],
        description: "Counts how often each distinct string occurs in the group, as a map from value to count, tracking at most 1000 distinct keys.",
    },
    FunctionDoc {
        name: "IFNULL",
        kind: FunctionKind::Scalar,
        category: "CONDITIONAL",
        signatures: &["IFNULL(expression T, fallback T) -> T"],
        description: "Returns the expression, or the fallback when the expression is NULL; the same as COALESCE with two arguments.",
    },
    FunctionDoc {
        name: "INITCAP",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["INITCAP(input STRING) -> STRING"],
        description: "Lower-cases the text, then capitalises the first letter of each whitespace-separated word; NULL gives NULL.",
    },
    FunctionDoc {
        name: "INSTR",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &[
            "INSTR(input STRING, substring STRING) -> INT",
            "INSTR(input STRING, substring STRING, position INT) -> INT",
            "INSTR(input STRING, substring STRING, position INT, occurrence INT) -> INT",
        ],
        description: "Returns the 1-based index of the n-th occurrence of the substring from a start position (negative searches backwards), or 0 if absent or NULL.",
    },
    FunctionDoc {
        name: "INT_FROM_BYTES",
        kind: FunctionKind::Scalar,
        category: "CONVERSIONS",
        signatures: &["INT_FROM_BYTES(bytes BYTES) -> INT", "INT_FROM_BYTES(bytes BYTES, byte_order STRING) -> INT"],
        description: "Reads a 4-byte signed integer, big-endian unless LITTLE_ENDIAN is given; a wrong length or byte order is an error, NULL gives NULL.",
    },
    FunctionDoc {
        name: "IS_JSON_STRING",
        kind: FunctionKind::Scalar,
        category: "JSON",
        signatures: &["IS_JSON_STRING(input STRING) -> BOOLEAN"],
        description: "Returns TRUE if the text parses as any JSON value and FALSE otherwise; NULL and empty text give FALSE, never NULL.",
    },
    FunctionDoc {
        name: "JSON_ARRAY_CONTAINS",
        kind: FunctionKind::Scalar,
        category: "JSON",
        signatures: &["JSON_ARRAY_CONTAINS(json STRING, value T) -> BOOLEAN"],
        description: "Returns TRUE if a top-level element of the JSON array has the value's type and equals it; non-arrays give FALSE, NULL JSON is an error.",
    },
    FunctionDoc {
        name: "JSON_ARRAY_LENGTH",
        kind: FunctionKind::Scalar,
        category: "JSON",
        signatures: &["JSON_ARRAY_LENGTH(json STRING) -> INT"],
        description: "Returns the element count of a top-level JSON array; non-arrays, empty text or NULL give NULL, invalid JSON is an error.",
    },
    FunctionDoc {
        name: "JSON_CONCAT",
        kind: FunctionKind::Scalar,
        category: "JSON",
        signatures: &["JSON_CONCAT(json_values STRING...) -> STRING"],
        description: "Merges JSON objects (later keys win) or else concatenates arrays, wrapping other values; any NULL or empty input gives NULL.",
    },
    FunctionDoc {
        name: "JSON_ITEMS",
        kind: FunctionKind::Scalar,
        category: "JSON",
        signatures: &["JSON_ITEMS(json STRING) -> ARRAY<STRING>"],
        description: "Returns each element of a top-level JSON array as compact JSON text; NULL gives NULL, non-array or invalid JSON is an error.",
    },
    FunctionDoc {
        name: "JSON_KEYS",
        kind: FunctionKind::Scalar,
        category: "JSON",
        signatures: &["JSON_KEYS(json STRING) -> ARRAY<STRING>"],
        description: "Returns the top-level keys of a JSON object in document order; non-objects, empty text or NULL give NULL, invalid JSON is an error.",
    },
    FunctionDoc {
        name: "JSON_RECORDS",
        kind: FunctionKind::Scalar,
        category: "JSON",
        signatures: &["JSON_RECORDS(json STRING) -> MAP<STRING,STRING>"],
        description: "Returns a JSON object's top-level entries as a map to value text, strings unquoted; non-objects or NULL give NULL, invalid JSON an error.",
    },
    FunctionDoc {
        name: "LATEST_BY_OFFSET",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &[
            "LATEST_BY_OFFSET(value T) -> T",
            "LATEST_BY_OFFSET(value T, ignore_nulls BOOLEAN) -> T",
            "LATEST_BY_OFFSET(value T, count INT) -> ARRAY<T>",
            "LATEST_BY_OFFSET(value T, count INT, ignore_nulls BOOLEAN) -> ARRAY<T>",
        ],
        description: "Returns the last value, or last n values oldest first, in offset order, skipping NULLs unless told not to; no values gives NULL or [].",
    },
    FunctionDoc {
        name: "LCASE",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["LCASE(input STRING) -> STRING"],
        description: "Returns the text in lower case; NULL gives NULL.",
    },
    FunctionDoc {
        name: "LEAST",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "LEAST(value INT, more_values INT...) -> INT",
            "LEAST(value BIGINT, more_values BIGINT...) -> BIGINT",
            "LEAST(value DOUBLE, more_values DOUBLE...) -> DOUBLE",
            "LEAST(value DECIMAL, more_values DECIMAL...) -> DECIMAL",
            "LEAST(value STRING, more_values STRING...) -> STRING",
            "LEAST(value BYTES, more_values BYTES...) -> BYTES",
            "LEAST(value DATE, more_values DATE...) -> DATE",
            "LEAST(value TIME, more_values TIME...) -> TIME",
            "LEAST(value TIMESTAMP, more_values TIMESTAMP...) -> TIMESTAMP",
        ],
        description: "Returns the smallest non-NULL argument, or NULL when all are NULL; every argument must have the same type.",
    },
    FunctionDoc {
        name: "LEN",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["LEN(input STRING) -> INT", "LEN(input BYTES) -> INT"],
        description: "Returns a string's length in UTF-16 code units, or the number of bytes in a BYTES value; NULL gives NULL.",
    },
    FunctionDoc {
        name: "LN",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["LN(value INT) -> DOUBLE", "LN(value BIGINT) -> DOUBLE", "LN(value DOUBLE) -> DOUBLE"],
        description: "Returns the natural logarithm; zero gives -Infinity, a negative value gives NaN, NULL gives NULL.",
    },
    FunctionDoc {
        name: "LOG",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "LOG(value INT) -> DOUBLE",
            "LOG(value BIGINT) -> DOUBLE",
            "LOG(value DOUBLE) -> DOUBLE",
            "LOG(base INT, value INT) -> DOUBLE",
            "LOG(base BIGINT, value BIGINT) -> DOUBLE",
            "LOG(base DOUBLE, value DOUBLE) -> DOUBLE",
        ],
        description: "With one argument returns its natural log (not base 10), with two the log of value in the given base; invalid bases or values give NaN.",
    },
    FunctionDoc {
        name: "LPAD",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &[
            "LPAD(input STRING, length INT, padding STRING) -> STRING",
            "LPAD(input BYTES, length INT, padding BYTES) -> BYTES",
        ],
        description: "Left-pads the input with repeats of the padding to exactly the length, cutting longer input; NULL, empty padding or a negative length gives NULL.",
    },
    FunctionDoc {
        name: "MAP_KEYS",
        kind: FunctionKind::Scalar,
        category: "MAP",
        signatures: &["MAP_KEYS(input MAP<STRING,T>) -> ARRAY<STRING>"],
        description: "Returns the map's keys as an array, in no guaranteed order; a NULL map gives NULL.",
    },
    FunctionDoc {
        name: "MAP_UNION",
        kind: FunctionKind::Scalar,
        category: "MAP",
        signatures: &["MAP_UNION(first MAP<STRING,T>, second MAP<STRING,T>) -> MAP<STRING,T>"],
        description: "Merges two maps, the second map's value winning on a shared key; one NULL map is ignored, two give NULL.",
    },
    FunctionDoc {
        name: "MAP_VALUES",
        kind: FunctionKind::Scalar,
        category: "MAP",
        signatures: &["MAP_VALUES(input MAP<STRING,T>) -> ARRAY<T>"],
        description: "Returns the map's values as an array, duplicates kept, in no guaranteed order; a NULL map gives NULL.",
    },
    FunctionDoc {
        name: "MASK",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &[
            "MASK(input STRING) -> STRING",
            "MASK(input STRING, upper_mask STRING, lower_mask STRING, digit_mask STRING, other_mask STRING) -> STRING",
        ],
        description: "Replaces upper-case letters with X, lower-case with x, digits with n and the rest with - (or the given masks); a NULL mask keeps that class.",
    },
    FunctionDoc {
        name: "MASK_KEEP_LEFT",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &[
            "MASK_KEEP_LEFT(input STRING, keep_count INT) -> STRING",
            "MASK_KEEP_LEFT(input STRING, keep_count INT, upper_mask STRING, lower_mask STRING, digit_mask STRING, other_mask STRING) -> STRING",
        ],
        description: "Masks like MASK but leaves the first n characters as they are; a negative or NULL count is an error, NULL input gives NULL.",
    },
    FunctionDoc {
        name: "MASK_KEEP_RIGHT",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &[
            "MASK_KEEP_RIGHT(input STRING, keep_count INT) -> STRING",
            "MASK_KEEP_RIGHT(input STRING, keep_count INT, upper_mask STRING, lower_mask STRING, digit_mask STRING, other_mask STRING) -> STRING",
        ],
        description: "Masks like MASK but leaves the last n characters as they are; a negative or NULL count is an error, NULL input gives NULL.",
    },
    FunctionDoc {
        name: "MASK_LEFT",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &[
            "MASK_LEFT(input STRING, mask_count INT) -> STRING",
            "MASK_LEFT(input STRING, mask_count INT, upper_mask STRING, lower_mask STRING, digit_mask STRING, other_mask STRING) -> STRING",
        ],
        description: "Masks like MASK but only the first n characters; a negative or NULL count is an error, NULL input gives NULL.",
    },
    FunctionDoc {
        name: "MASK_RIGHT",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &[
            "MASK_RIGHT(input STRING, mask_count INT) -> STRING",
            "MASK_RIGHT(input STRING, mask_count INT, upper_mask STRING, lower_mask STRING, digit_mask STRING, other_mask STRING) -> STRING",
        ],
        description: "Masks like MASK but only the last n characters; a negative or NULL count is an error, NULL input gives NULL.",
    },
    FunctionDoc {
        name: "MAX",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &[
            "MAX(value INT) -> INT",
            "MAX(value BIGINT) -> BIGINT",
            "MAX(value DOUBLE) -> DOUBLE",
            "MAX(value DECIMAL) -> DECIMAL",
            "MAX(value DATE) -> DATE",
            "MAX(value TIME) -> TIME",
            "MAX(value TIMESTAMP) -> TIMESTAMP",
            "MAX(value STRING) -> STRING",
            "MAX(value BYTES) -> BYTES",
        ],
        description: "Returns the largest non-NULL value in the group, or NULL when there is none.",
    },
    FunctionDoc {
        name: "MD5",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["MD5(input STRING) -> STRING"],
        description: "Returns the MD5 digest of the string's UTF-8 bytes as 32 lower-case hex digits; NULL gives NULL.",
    },
    FunctionDoc {
        name: "MIN",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &[
            "MIN(value INT) -> INT",
            "MIN(value BIGINT) -> BIGINT",
            "MIN(value DOUBLE) -> DOUBLE",
            "MIN(value DECIMAL) -> DECIMAL",
            "MIN(value DATE) -> DATE",
            "MIN(value TIME) -> TIME",
            "MIN(value TIMESTAMP) -> TIMESTAMP",
            "MIN(value STRING) -> STRING",
            "MIN(value BYTES) -> BYTES",
        ],
        description: "Returns the smallest non-NULL value in the group, or NULL when there is none.",
    },
    FunctionDoc {
        name: "NULLIF",
        kind: FunctionKind::Scalar,
        category: "CONDITIONAL",
        signatures: &["NULLIF(expression T, other T) -> T"],
        description: "Returns NULL when the first argument is NULL or equal to the second, otherwise the first argument.",
    },
    FunctionDoc {
        name: "PARSE_DATE",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["PARSE_DATE(text STRING, pattern STRING) -> DATE"],
        description: "Parses text into a DATE with a SimpleDateFormat-style pattern; unparseable text or a time part is an error, NULL gives NULL.",
    },
    FunctionDoc {
        name: "PARSE_TIME",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["PARSE_TIME(text STRING, pattern STRING) -> TIME"],
        description: "Parses text into a TIME with a case-insensitive Java pattern; date fields or unparseable text are errors, NULL gives NULL.",
    },
    FunctionDoc {
        name: "PARSE_TIMESTAMP",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &[
            "PARSE_TIMESTAMP(text STRING, pattern STRING) -> TIMESTAMP",
            "PARSE_TIMESTAMP(text STRING, pattern STRING, time_zone STRING) -> TIMESTAMP",
        ],
        description: "Parses text into a TIMESTAMP with a Java pattern, using a zone in the text, else the zone argument, else UTC; NULL gives NULL.",
    },
    FunctionDoc {
        name: "PI",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["PI() -> DOUBLE"],
        description: "Returns the constant pi as a DOUBLE.",
    },
    FunctionDoc {
        name: "POWER",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "POWER(base INT, exponent INT) -> DOUBLE",
            "POWER(base BIGINT, exponent BIGINT) -> DOUBLE",
            "POWER(base DOUBLE, exponent DOUBLE) -> DOUBLE",
        ],
        description: "Returns base raised to exponent as a DOUBLE, following Java's Math.pow for overflow and NaN; a NULL argument gives NULL.",
    },
    FunctionDoc {
        name: "RADIANS",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "RADIANS(degrees INT) -> DOUBLE",
            "RADIANS(degrees BIGINT) -> DOUBLE",
            "RADIANS(degrees DOUBLE) -> DOUBLE",
        ],
        description: "Converts an angle from degrees to radians; NULL gives NULL.",
    },
    FunctionDoc {
        name: "RANDOM",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["RANDOM() -> DOUBLE"],
        description: "Returns a pseudo-random DOUBLE from 0.0 up to but excluding 1.0, drawn afresh on every evaluation.",
    },
    FunctionDoc {
        name: "REDUCE",
        kind: FunctionKind::Scalar,
        category: "LAMBDA",
        signatures: &[
            "REDUCE(input ARRAY<T>, initial_state S, reducer (S, T) => S) -> S",
            "REDUCE(input MAP<K,V>, initial_state S, reducer (S, K, V) => S) -> S",
        ],
        description: "Folds the array or map into one value starting from the initial state; a NULL collection returns the initial state unchanged.",
    },
    FunctionDoc {
        name: "REGEXP_EXTRACT",
        kind: FunctionKind::Scalar,
        category: "REGULAR EXPRESSION",
        signatures: &[
            "REGEXP_EXTRACT(pattern STRING, input STRING) -> STRING",
            "REGEXP_EXTRACT(pattern STRING, input STRING, group INT) -> STRING",
        ],
        description: "Returns the first match of the pattern in the input, or one capture group of it; no match or a missing group gives NULL.",
    },
    FunctionDoc {
        name: "REGEXP_EXTRACT_ALL",
        kind: FunctionKind::Scalar,
        category: "REGULAR EXPRESSION",
        signatures: &[
            "REGEXP_EXTRACT_ALL(pattern STRING, input STRING) -> ARRAY<STRING>",
            "REGEXP_EXTRACT_ALL(pattern STRING, input STRING, group INT) -> ARRAY<STRING>",
        ],
        description: "Returns every match of the pattern (or one group of each) as an array; no match gives an empty array, a NULL argument gives NULL.",
    },
    FunctionDoc {
        name: "REGEXP_REPLACE",
        kind: FunctionKind::Scalar,
        category: "REGULAR EXPRESSION",
        signatures: &["REGEXP_REPLACE(input STRING, pattern STRING, replacement STRING) -> STRING"],
        description: "Replaces every match of the pattern with the replacement, which may refer to groups as $1; any NULL argument gives NULL.",
    },
    FunctionDoc {
        name: "REGEXP_SPLIT_TO_ARRAY",
        kind: FunctionKind::Scalar,
        category: "REGULAR EXPRESSION",
        signatures: &["REGEXP_SPLIT_TO_ARRAY(input STRING, pattern STRING) -> ARRAY<STRING>"],
        description: "Splits the input wherever the pattern matches, keeping empty pieces; no match gives a one-element array, NULL gives NULL.",
    },
    FunctionDoc {
        name: "REPLACE",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["REPLACE(input STRING, search STRING, replacement STRING) -> STRING"],
        description: "Replaces every literal (not regex) occurrence of the search text with the replacement; any NULL argument gives NULL.",
    },
    FunctionDoc {
        name: "ROUND",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "ROUND(value INT) -> BIGINT",
            "ROUND(value BIGINT) -> BIGINT",
            "ROUND(value DOUBLE) -> BIGINT",
            "ROUND(value DOUBLE, scale INT) -> DOUBLE",
            "ROUND(value DECIMAL) -> DECIMAL",
            "ROUND(value DECIMAL, scale INT) -> DECIMAL",
        ],
        description: "Rounds to the given number of decimal places (default 0, negative allowed), halves going towards +Infinity; a NULL INT or BIGINT is an error.",
    },
    FunctionDoc {
        name: "RPAD",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &[
            "RPAD(input STRING, length INT, padding STRING) -> STRING",
            "RPAD(input BYTES, length INT, padding BYTES) -> BYTES",
        ],
        description: "Right-pads the input with repeats of the padding to exactly the length, cutting longer input; NULL, empty padding or a negative length gives NULL.",
    },
    FunctionDoc {
        name: "SIGN",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["SIGN(value INT) -> INT", "SIGN(value BIGINT) -> INT", "SIGN(value DOUBLE) -> INT"],
        description: "Returns -1, 0 or 1 according to the sign of the value (NaN gives 0); NULL gives NULL.",
    },
    FunctionDoc {
        name: "SIN",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["SIN(angle INT) -> DOUBLE", "SIN(angle BIGINT) -> DOUBLE", "SIN(angle DOUBLE) -> DOUBLE"],
        description: "Returns the sine of an angle in radians; infinite or NaN input gives NaN, NULL gives NULL.",
    },
    FunctionDoc {
        name: "SINH",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["SINH(value INT) -> DOUBLE", "SINH(value BIGINT) -> DOUBLE", "SINH(value DOUBLE) -> DOUBLE"],
        description: "Returns the hyperbolic sine; overflow gives a signed Infinity, NULL gives NULL.",
    },
    FunctionDoc {
        name: "SLICE",
        kind: FunctionKind::Scalar,
        category: "ARRAY",
        signatures: &["SLICE(input ARRAY<T>, start_index INT, end_index INT) -> ARRAY<T>"],
        description: "Returns the elements between two 1-based positions, both inclusive; NULL bounds mean the ends, out-of-range bounds give NULL.",
    },
    FunctionDoc {
        name: "SPLIT",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &[
            "SPLIT(input STRING, delimiter STRING) -> ARRAY<STRING>",
            "SPLIT(input BYTES, delimiter BYTES) -> ARRAY<BYTES>",
        ],
        description: "Splits on a literal delimiter, keeping empty pieces; an empty delimiter splits into single characters or bytes, and NULL gives NULL.",
    },
    FunctionDoc {
        name: "SPLIT_TO_MAP",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &[
            "SPLIT_TO_MAP(input STRING, entry_delimiter STRING, key_value_delimiter STRING) -> MAP<STRING,STRING>",
        ],
        description: "Splits text into entries and each entry into key and value, dropping entries with no separator; NULL, empty or equal delimiters give NULL.",
    },
    FunctionDoc {
        name: "SQRT",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["SQRT(value INT) -> DOUBLE", "SQRT(value BIGINT) -> DOUBLE", "SQRT(value DOUBLE) -> DOUBLE"],
        description: "Returns the square root; negative input gives NaN, NULL gives NULL.",
    },
    FunctionDoc {
        name: "STDDEV_SAMP",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &[
            "STDDEV_SAMP(value INT) -> DOUBLE",
            "STDDEV_SAMP(value BIGINT) -> DOUBLE",
            "STDDEV_SAMP(value DOUBLE) -> DOUBLE",
        ],
        description: "Returns the sample variance (no square root is taken) of the non-NULL values; fewer than two values gives 0.0.",
    },
    FunctionDoc {
        name: "STDDEV_SAMPLE",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &[
            "STDDEV_SAMPLE(value INT) -> DOUBLE",
            "STDDEV_SAMPLE(value BIGINT) -> DOUBLE",
            "STDDEV_SAMPLE(value DOUBLE) -> DOUBLE",
        ],
        description: "Returns the sample standard deviation of the non-NULL values; fewer than two values gives 0.0.",
    },
    FunctionDoc {
        name: "STRINGTODATE",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["STRINGTODATE(text STRING, pattern STRING) -> INT"],
        description: "Deprecated (use PARSE_DATE): parses text with a date pattern into days since 1970-01-01; NULL or unparseable input is an error.",
    },
    FunctionDoc {
        name: "STRINGTOTIMESTAMP",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &[
            "STRINGTOTIMESTAMP(text STRING, pattern STRING) -> BIGINT",
            "STRINGTOTIMESTAMP(text STRING, pattern STRING, time_zone STRING) -> BIGINT",
        ],
        description: "Deprecated (use PARSE_TIMESTAMP): parses text into epoch milliseconds, in the server's zone unless one is given; NULL is an error.",
    },
    FunctionDoc {
        name: "SUBSTRING",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &[
            "SUBSTRING(input STRING, position INT) -> STRING",
            "SUBSTRING(input STRING, position INT, length INT) -> STRING",
            "SUBSTRING(input BYTES, position INT) -> BYTES",
            "SUBSTRING(input BYTES, position INT, length INT) -> BYTES",
        ],
        description: "Returns the part from a 1-based position (negative counts from the end) for an optional length, clamped to the input; any NULL gives NULL.",
    },
    FunctionDoc {
        name: "SUM",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &[
            "SUM(value INT) -> INT",
            "SUM(value BIGINT) -> BIGINT",
            "SUM(value DOUBLE) -> DOUBLE",
            "SUM(value DECIMAL) -> DECIMAL",
        ],
        description: "Returns the total of the non-NULL values in the input's type, 0 for none; integers wrap on overflow, DECIMAL overflow is an error.",
    },
    FunctionDoc {
        name: "SUM_LIST",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &[
            "SUM_LIST(values ARRAY<INT>) -> INT",
            "SUM_LIST(values ARRAY<BIGINT>) -> BIGINT",
            "SUM_LIST(values ARRAY<DOUBLE>) -> DOUBLE",
        ],
        description: "Adds every non-NULL element of each row's array to one running total that starts at 0; NULL arrays are skipped.",
    },
    FunctionDoc {
        name: "TAN",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["TAN(angle INT) -> DOUBLE", "TAN(angle BIGINT) -> DOUBLE", "TAN(angle DOUBLE) -> DOUBLE"],
        description: "Returns the tangent of an angle in radians, large but finite near the asymptotes; NULL gives NULL.",
    },
    FunctionDoc {
        name: "TANH",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &["TANH(value INT) -> DOUBLE", "TANH(value BIGINT) -> DOUBLE", "TANH(value DOUBLE) -> DOUBLE"],
        description: "Returns the hyperbolic tangent, between -1 and 1; NULL gives NULL.",
    },
    FunctionDoc {
        name: "TIMEADD",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["TIMEADD(unit INTERVALUNIT, interval INT, time TIME) -> TIME"],
        description: "Adds an interval in the given unit to a time of day, wrapping around midnight; any NULL gives NULL.",
    },
    FunctionDoc {
        name: "TIMESTAMPADD",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["TIMESTAMPADD(unit INTERVALUNIT, interval INT, timestamp TIMESTAMP) -> TIMESTAMP"],
        description: "Adds a fixed-length interval in the given unit to a timestamp, with no calendar adjustment; any NULL gives NULL.",
    },
    FunctionDoc {
        name: "TIMESTAMPSUB",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["TIMESTAMPSUB(unit INTERVALUNIT, interval INT, timestamp TIMESTAMP) -> TIMESTAMP"],
        description: "Subtracts a fixed-length interval in the given unit from a timestamp, with no calendar adjustment; any NULL gives NULL.",
    },
    FunctionDoc {
        name: "TIMESTAMPTOSTRING",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &[
            "TIMESTAMPTOSTRING(epoch_millis BIGINT, pattern STRING) -> STRING",
            "TIMESTAMPTOSTRING(epoch_millis BIGINT, pattern STRING, time_zone STRING) -> STRING",
        ],
        description: "Deprecated (use FORMAT_TIMESTAMP): formats epoch milliseconds in the server's zone unless one is given; NULL milliseconds is an error.",
    },
    FunctionDoc {
        name: "TIMESUB",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["TIMESUB(unit INTERVALUNIT, interval INT, time TIME) -> TIME"],
        description: "Subtracts an interval in the given unit from a time of day, wrapping around midnight; any NULL gives NULL.",
    },
    FunctionDoc {
        name: "TOPK",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &[
            "TOPK(sort_value INT, k INT) -> ARRAY<INT>",
            "TOPK(sort_value BIGINT, k INT) -> ARRAY<BIGINT>",
            "TOPK(sort_value DOUBLE, k INT) -> ARRAY<DOUBLE>",
            "TOPK(sort_value STRING, k INT) -> ARRAY<STRING>",
            "TOPK(sort_value T, extra_columns X..., k INT) -> ARRAY<STRUCT<sort_col T, col0 X, ...>>",
        ],
        description: "Returns the k largest values in descending order, duplicates kept, optionally with extra columns in structs; NULL sort values are ignored.",
    },
    FunctionDoc {
        name: "TOPKDISTINCT",
        kind: FunctionKind::Aggregate,
        category: "AGGREGATE",
        signatures: &[
            "TOPKDISTINCT(value INT, k INT) -> ARRAY<INT>",
            "TOPKDISTINCT(value BIGINT, k INT) -> ARRAY<BIGINT>",
            "TOPKDISTINCT(value DOUBLE, k INT) -> ARRAY<DOUBLE>",
            "TOPKDISTINCT(value DECIMAL, k INT) -> ARRAY<DECIMAL>",
            "TOPKDISTINCT(value STRING, k INT) -> ARRAY<STRING>",
            "TOPKDISTINCT(value BYTES, k INT) -> ARRAY<BYTES>",
            "TOPKDISTINCT(value DATE, k INT) -> ARRAY<DATE>",
            "TOPKDISTINCT(value TIME, k INT) -> ARRAY<TIME>",
            "TOPKDISTINCT(value TIMESTAMP, k INT) -> ARRAY<TIMESTAMP>",
        ],
        description: "Returns the k largest distinct non-NULL values in descending order; k must be a literal.",
    },
    FunctionDoc {
        name: "TO_BYTES",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["TO_BYTES(input STRING, encoding STRING) -> BYTES"],
        description: "Decodes hex, utf8, ascii or base64 text into bytes; malformed text or an unknown encoding is an error, a NULL argument gives NULL.",
    },
    FunctionDoc {
        name: "TO_JSON_STRING",
        kind: FunctionKind::Scalar,
        category: "JSON",
        signatures: &["TO_JSON_STRING(value T) -> STRING"],
        description: "Serialises any value as compact JSON text, with struct fields and map keys sorted; NULL becomes the text null.",
    },
    FunctionDoc {
        name: "TRANSFORM",
        kind: FunctionKind::Scalar,
        category: "LAMBDA",
        signatures: &[
            "TRANSFORM(input ARRAY<T>, mapper (T) => R) -> ARRAY<R>",
            "TRANSFORM(input MAP<K,V>, key_mapper (K, V) => R, value_mapper (K, V) => U) -> MAP<R,U>",
        ],
        description: "Applies the lambda to each array element, or new-key and new-value lambdas to each map entry; a NULL collection gives NULL.",
    },
    FunctionDoc {
        name: "TRIM",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["TRIM(input STRING) -> STRING"],
        description: "Removes leading and trailing spaces and control characters; NULL gives NULL.",
    },
    FunctionDoc {
        name: "TRUNC",
        kind: FunctionKind::Scalar,
        category: "MATHEMATICAL",
        signatures: &[
            "TRUNC(value INT) -> BIGINT",
            "TRUNC(value BIGINT) -> BIGINT",
            "TRUNC(value DOUBLE) -> BIGINT",
            "TRUNC(value DOUBLE, scale INT) -> DOUBLE",
            "TRUNC(value DECIMAL) -> DECIMAL",
            "TRUNC(value DECIMAL, scale INT) -> DECIMAL",
        ],
        description: "Cuts the value towards zero at the given number of decimal places (default 0, negative allowed); NULL gives NULL.",
    },
    FunctionDoc {
        name: "UCASE",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["UCASE(input STRING) -> STRING"],
        description: "Returns the text in upper case; NULL gives NULL.",
    },
    FunctionDoc {
        name: "UNIX_DATE",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["UNIX_DATE() -> INT", "UNIX_DATE(date DATE) -> INT"],
        description: "Returns days since 1970-01-01 for the given date, or for today in the server's zone when called bare; NULL gives NULL.",
    },
    FunctionDoc {
        name: "UNIX_TIMESTAMP",
        kind: FunctionKind::Scalar,
        category: "DATE / TIME",
        signatures: &["UNIX_TIMESTAMP() -> BIGINT", "UNIX_TIMESTAMP(timestamp TIMESTAMP) -> BIGINT"],
        description: "Returns milliseconds since the Unix epoch for the given timestamp, or for the current time when called bare; NULL gives NULL.",
    },
    FunctionDoc {
        name: "URL_DECODE_PARAM",
        kind: FunctionKind::Scalar,
        category: "URL",
        signatures: &["URL_DECODE_PARAM(encoded STRING) -> STRING"],
        description: "Decodes form-encoded UTF-8 text, turning + into a space and %XX into bytes; a malformed escape is an error, NULL gives NULL.",
    },
    FunctionDoc {
        name: "URL_ENCODE_PARAM",
        kind: FunctionKind::Scalar,
        category: "URL",
        signatures: &["URL_ENCODE_PARAM(input STRING) -> STRING"],
        description: "Form-encodes text as UTF-8, writing a space as + and other unsafe characters as %XX; NULL gives NULL.",
    },
    FunctionDoc {
        name: "URL_EXTRACT_FRAGMENT",
        kind: FunctionKind::Scalar,
        category: "URL",
        signatures: &["URL_EXTRACT_FRAGMENT(url STRING) -> STRING"],
        description: "Returns the decoded fragment after # in a URL; no fragment or NULL gives NULL, a malformed URL is an error.",
    },
    FunctionDoc {
        name: "URL_EXTRACT_HOST",
        kind: FunctionKind::Scalar,
        category: "URL",
        signatures: &["URL_EXTRACT_HOST(url STRING) -> STRING"],
        description: "Returns the host name of a URL, without the port; no host or NULL gives NULL, a malformed URL is an error.",
    },
    FunctionDoc {
        name: "URL_EXTRACT_PARAMETER",
        kind: FunctionKind::Scalar,
        category: "URL",
        signatures: &["URL_EXTRACT_PARAMETER(url STRING, parameter_name STRING) -> STRING"],
        description: "Returns the decoded value of the first query parameter with exactly that name, or '' if it has none; absent or NULL gives NULL.",
    },
    FunctionDoc {
        name: "URL_EXTRACT_PATH",
        kind: FunctionKind::Scalar,
        category: "URL",
        signatures: &["URL_EXTRACT_PATH(url STRING) -> STRING"],
        description: "Returns the decoded path of a URL with its leading slash; an opaque URL or NULL gives NULL, a malformed URL is an error.",
    },
    FunctionDoc {
        name: "URL_EXTRACT_PORT",
        kind: FunctionKind::Scalar,
        category: "URL",
        signatures: &["URL_EXTRACT_PORT(url STRING) -> INT"],
        description: "Returns the explicit port number of a URL; no port or NULL gives NULL, a malformed URL is an error.",
    },
    FunctionDoc {
        name: "URL_EXTRACT_PROTOCOL",
        kind: FunctionKind::Scalar,
        category: "URL",
        signatures: &["URL_EXTRACT_PROTOCOL(url STRING) -> STRING"],
        description: "Returns the scheme of a URL, such as http; a relative URL or NULL gives NULL, a malformed URL is an error.",
    },
    FunctionDoc {
        name: "URL_EXTRACT_QUERY",
        kind: FunctionKind::Scalar,
        category: "URL",
        signatures: &["URL_EXTRACT_QUERY(url STRING) -> STRING"],
        description: "Returns the decoded query string of a URL, without the ?; no query or NULL gives NULL, a malformed URL is an error.",
    },
    FunctionDoc {
        name: "UUID",
        kind: FunctionKind::Scalar,
        category: "STRING",
        signatures: &["UUID() -> STRING", "UUID(bytes BYTES) -> STRING"],
        description: "Returns a new random version-4 UUID, or formats exactly 16 bytes as a UUID string; any other length, or NULL, gives NULL.",
    },
];

/// The built-in called `name`, in any case.
pub fn find(name: &str) -> Option<&'static FunctionDoc> {
    CATALOGUE.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_every_builtin_once_in_order() {
        assert_eq!(CATALOGUE.len(), 149);
        for pair in CATALOGUE.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} should sort before {}", pair[0].name, pair[1].name);
        }
    }

    #[test]
    fn counts_per_kind() {
        let count = |kind| CATALOGUE.iter().filter(|f| f.kind == kind).count();
        assert_eq!(count(FunctionKind::Scalar), 129);
        assert_eq!(count(FunctionKind::Aggregate), 18);
        assert_eq!(count(FunctionKind::Table), 2);
    }

    #[test]
    fn entries_are_complete() {
        const CATEGORIES: [&str; 14] = [
            "STRING",
            "MATHEMATICAL",
            "DATE / TIME",
            "JSON",
            "URL",
            "ARRAY",
            "MAP",
            "LAMBDA",
            "CONVERSIONS",
            "AGGREGATE",
            "TABLE",
            "OTHER",
            "REGULAR EXPRESSION",
            "CONDITIONAL",
        ];
        for f in CATALOGUE {
            assert_eq!(f.name, f.name.to_ascii_uppercase(), "{} is not upper case", f.name);
            assert!(CATEGORIES.contains(&f.category), "{} has unknown category {}", f.name, f.category);
            assert!(!f.signatures.is_empty(), "{} has no signature", f.name);
            for sig in f.signatures {
                assert!(sig.starts_with(&format!("{}(", f.name)), "{}: signature {sig} names another function", f.name);
                assert!(sig.contains(") -> "), "{}: signature {sig} has no return type", f.name);
            }
            assert!(!f.description.trim().is_empty(), "{} has no description", f.name);
            assert!(f.description.len() <= 160, "{} has a description over 160 chars", f.name);
            assert!(!f.description.contains('\n'), "{} has a multi-line description", f.name);
        }
    }

    #[test]
    fn aggregates_and_table_functions_use_their_own_categories() {
        for f in CATALOGUE {
            match f.kind {
                FunctionKind::Aggregate => assert_eq!(f.category, "AGGREGATE", "{}", f.name),
                FunctionKind::Table => assert_eq!(f.category, "TABLE", "{}", f.name),
                FunctionKind::Scalar => assert!(f.category != "AGGREGATE" && f.category != "TABLE", "{}", f.name),
            }
        }
    }

    #[test]
    fn find_ignores_case() {
        assert_eq!(find("regexp_extract").map(|f| f.name), Some("REGEXP_EXTRACT"));
        assert_eq!(find("Count").map(|f| f.kind), Some(FunctionKind::Aggregate));
        assert_eq!(find("explode").map(|f| f.kind.label()), Some("TABLE"));
        assert!(find("upper").is_none());
        assert!(find("cast").is_none());
    }
}
