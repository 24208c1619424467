#!/bin/bash
# test/meta.test.sh -- META.json is valid JSON with the keys the PGXN Meta
# Spec 1.0.0 requires, and its versions are the control file's
# default_version (PGXN wants semantic versions: "1.2" is "1.2.0").
# Uses Perl's core JSON::PP, so it needs nothing beyond the base system.
set -euo pipefail

repo=${ANON_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
default_version=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$repo/anonymize.control")
[ -n "$default_version" ] || { echo "no default_version in anonymize.control"; exit 1; }

perl -MJSON::PP -e '
	my ($file, $control) = @ARGV;
	open my $fh, "<", $file or die "cannot read $file: $!\n";
	my $meta = eval { JSON::PP->new->decode(do { local $/; <$fh> }) }
	  or die "META.json is not valid JSON: $@";
	for my $key (qw(name abstract version maintainer license provides meta-spec)) {
		die "META.json lacks the required key \"$key\"\n" unless exists $meta->{$key};
	}
	die "meta-spec version is not 1.0.0\n" unless $meta->{"meta-spec"}{version} eq "1.0.0";
	my $semver = $control =~ /^\d+\.\d+$/ ? "$control.0" : $control;
	die "version $meta->{version} is not the control file'\''s $control ($semver)\n"
	  unless $meta->{version} eq $semver;
	my $ext = $meta->{provides}{anonymize} or die "META.json provides no \"anonymize\"\n";
	die "provides.anonymize.version $ext->{version} is not $semver\n"
	  unless $ext->{version} eq $semver;
	for my $file (grep { defined } $ext->{file}, $ext->{docfile}) {
		die "provides.anonymize names $file, which does not exist\n"
		  unless -e "'"$repo"'/$file";
	}
	print "META.json: valid, version $meta->{version} = default_version $control\n";
' "$repo/META.json" "$default_version"
