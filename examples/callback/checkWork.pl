#!/usr/bin/perl
# Checks each finished frame: a frame that did not complete is retried once by the farm.
use strict;
use warnings;

my $job = (qb::jobinfo("-id", $qb::jobid))[0];
my $work = qb::workid();
open(my $fh, '>>', 'checkWork.log') or die "cannot open log: $!";
print $fh "job $qb::jobid ($job->{name}) frame $work finished\n";
close($fh);
