# perl_check.pl: a static syntax check of one Perl script (read from stdin) with PPI.
#
# PPI parses Perl as a document without compiling it, so no BEGIN block, `use` or
# `require` of the checked script ever runs. It catches what a static parser can see:
# unbalanced braces, brackets and parentheses, and text PPI cannot tokenize. Each problem is
# printed as `line<TAB>column<TAB>message`; the exit status is 0 even when problems are found.
use strict;
use warnings;
use PPI ();

binmode(STDIN);
my $source = do { local $/; <STDIN> };
$source = '' unless defined $source;
my $doc = PPI::Document->new(\$source);
unless ($doc) {
    my $why = PPI::Document->errstr || 'PPI could not parse the script';
    $why =~ s/\s+/ /g;
    print "1\t1\t$why\n";
    exit 0;
}
$doc->index_locations;
my @problems;
for my $brace (@{ $doc->find('PPI::Statement::UnmatchedBrace') || [] }) {
    my $loc = $brace->location;
    push @problems, [$loc->[0], $loc->[1], "unmatched closing '" . $brace->content . "'"];
}
for my $structure (@{ $doc->find('PPI::Structure') || [] }) {
    next if $structure->finish;
    my $start = $structure->start or next;
    my $loc = $start->location;
    push @problems, [$loc->[0], $loc->[1], "'" . $start->content . "' is never closed"];
}
for my $p (sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] } @problems) {
    print join("\t", @$p), "\n";
}
exit 0;
