pub struct Socket; pub struct Options; pub struct Error;
